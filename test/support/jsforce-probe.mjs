// A fresh Node process that loads jsforce the way a task child does (load-jsforce.ts) and reports which of
// jsforce's deferred dependencies were loaded. A separate process, because the module cache is per process.
// Plain JavaScript run by node on the compiled dist/, like a task child; driven over IPC by
// test/load-jsforce.test.ts:
//   { job: 'operations', runs, credentials, artifactDir, source } runs Switchyard's operations themselves (the
//     registry's modules, with an operation context as child-main.ts builds it) against the Salesforce
//     simulator, with jsforce from the prebuilt bundle in dist/ (source 'bundle', the default) or from
//     node_modules ('packages'), and says where jsforce came from;
//   { job: 'bundle-deploy', dir, credentials, zip } loads jsforce with the bundle in `dir` (module-bundle.ts),
//     deploys `zip` (base64) with it and polls checkDeployStatus until done;
//   { job: 'open-bundle', dir } only loads jsforce with it and makes a Connection;
//   { job: 'use-each' } uses each deferred dependency, through the code that imports it where that is easy;
//   { job: 'es-module-flags' } loads each deferred dependency plainly (nothing deferred) and reports its
//     `__esModule`, which the stand-ins answer without loading.
import { createRequire } from 'node:module';
import { taskParamSchemas } from '../../dist/domain/tasks/task-params.js';
import { operationLoaders } from '../../dist/workers/operations/registry.js';
import { deferredStates, resolveDeferred } from '../../dist/deferred-modules.js';
import { serveProbe } from './probe-child.mjs';
import { deferredDependencies, jsforceBundle } from '../../dist/workers/operations/salesforce/jsforce-bundle.js';
import { loadJsforce } from '../../dist/workers/operations/salesforce/load-jsforce.js';
import { bundleState, skipModuleBundle } from '../../dist/module-bundles/module-bundle.js';

const deferredDependencyStates = () => deferredStates(deferredDependencies);

const warnings = [];
process.on('warning', (warning) => warnings.push({ code: warning.code, message: warning.message }));

async function operations({ runs, credentials, artifactDir, source = 'bundle' }) {
  if (source === 'packages') skipModuleBundle(jsforceBundle);
  const results = [];
  for (const { type, params, sourceZip } of runs) {
    const ctx = {
      taskId: `probe-${type}`,
      attempt: 1,
      maxAttempts: 1,
      params: taskParamSchemas[type].parse(params),
      org: { alias: 'probe', instanceUrl: credentials.instanceUrl },
      files: { artifactDir, ...(sourceZip ? { sourceZip } : {}) },
      credentials: async () => credentials,
      progress: () => {},
      log: () => {},
      signal: new AbortController().signal,
    };
    const operation = (await operationLoaders[type]()).default;
    try {
      results.push({ type, ok: true, result: await operation.run(ctx) });
    } catch (error) {
      results.push({ type, ok: false, code: error.code, message: error.message });
    }
  }
  return { results, states: deferredDependencyStates(), jsforce: bundleState(jsforceBundle) };
}

/** Whether jsforce's schema module in the module cache is the bundle's lazy stand-in (its export is read-only). */
function schemaIsStandIn() {
  const cached = createRequire(import.meta.url).cache[createRequire(import.meta.url).resolve(jsforceBundle.lazyData.request)];
  return cached ? Object.getOwnPropertyDescriptor(cached.exports, 'ApiSchemas')?.writable === false : null;
}

/** Loads jsforce as a Salesforce operation does, with the bundle in `dir`, and opens a connection object. */
async function openBundle({ dir }) {
  const jsforce = await loadJsforce(['metadata'], dir);
  const conn = new jsforce.Connection({ instanceUrl: 'https://probe.my.salesforce.com', accessToken: 'probe' });
  await new Promise((resolve) => setImmediate(resolve)); // a warning is emitted on the next tick
  return { state: bundleState(jsforceBundle, dir), warnings, schemaIsStandIn: schemaIsStandIn(), metadataDeploy: typeof conn.metadata.deploy };
}

async function bundleDeploy({ dir, credentials, zip }) {
  const jsforce = await loadJsforce(['metadata'], dir);
  const oauth2 = { clientId: credentials.clientId, clientSecret: credentials.clientSecret, loginUrl: credentials.instanceUrl };
  const token = await new jsforce.OAuth2(oauth2).refreshToken(credentials.refreshToken);
  const conn = new jsforce.Connection({ oauth2, instanceUrl: token.instance_url, accessToken: token.access_token });
  const { id } = await conn.metadata.deploy(Buffer.from(zip, 'base64'), { checkOnly: true });
  let result;
  for (let polls = 0; polls < 50 && !result?.done; polls += 1) result = await conn.metadata.checkDeployStatus(id, true);
  return { state: bundleState(jsforceBundle, dir), states: deferredDependencyStates(), schemaIsStandIn: schemaIsStandIn(), result };
}

/** Reflection on a stand-in (an object module): `in` loads it; keys and prototype are the module's. */
function reflection(stringify) {
  return {
    stringifyIn: 'stringify' in stringify,
    stringifyKeys: Object.keys(stringify).includes('stringify'),
    stringifyPrototype: Object.getPrototypeOf(stringify) === Object.prototype, // the stand-in's own target is a function
  };
}

async function useEach() {
  await loadJsforce(['metadata']);
  const before = deferredDependencyStates();
  const jsforceRequire = createRequire(createRequire(import.meta.url).resolve('jsforce/lib/core.js'));
  const standIn = (request) => createRequire(import.meta.url)(resolveDeferred(deferredDependencies.find((d) => d.request === request)));
  const csv = jsforceRequire('./csv.js');
  const FormData = standIn('form-data');
  const form = new FormData();
  form.append('entity_content', JSON.stringify({ a: 1 }), { contentType: 'application/json' });
  const createAgent = standIn('https-proxy-agent');
  const agent = createAgent('http://127.0.0.1:3128');
  const xml2js = jsforceRequire('xml2js');
  const { URL: WhatwgUrl } = standIn('whatwg-url');
  const uses = {
    csv: csv.parseCSV('Id,Name\n001,Acme\n'),
    csvOut: csv.toCSV([{ Id: '001', Name: 'Acme' }]),
    formIsFormData: form instanceof FormData,
    formBody: form.getBuffer().toString(),
    agentProxyHost: agent.proxy.host,
    xml: new xml2js.Builder({ headless: true, renderOpts: { pretty: false } }).buildObject({ deploy: { id: '0Af' } }),
    url: new WhatwgUrl('https://example.my.salesforce.com/services/data?x=1').pathname,
    ...reflection(standIn('csv-stringify')),
  };
  return { uses, before, after: deferredDependencyStates() };
}

serveProbe({ operations, 'use-each': useEach, 'open-bundle': openBundle, 'bundle-deploy': bundleDeploy }, deferredDependencies);
