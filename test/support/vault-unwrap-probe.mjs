// A fresh Node process that redeems a Vault grant the way a task child does (src/secrets/vault-unwrap.ts,
// from the compiled dist/) and reports which of node-vault's deferred dependencies were loaded. A separate
// process, because the module cache is per process. Driven over IPC by test/vault-store.test.ts:
//   { job: 'unwrap', grant, source }  unwraps the grant, as child-main.ts does for a Vault grant, with node-vault
//                                from its prebuilt bundle in dist/ (source 'bundle', the default) or from
//                                node_modules ('packages'), and says where node-vault came from, whether Node's
//                                undici (the Fetch API) got loaded, and whether the Fetch API's globals are as
//                                they were before;
//   { job: 'use-each' }          has node-vault's axios use each deferred dependency: a multipart body, and an
//                                https request through an HTTP proxy (a local listener that sees the CONNECT);
//   { job: 'es-module-flags' }   loads each deferred dependency plainly (nothing deferred) and reports its
//                                `__esModule`, which the stand-ins answer without loading.
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { serveProbe } from './probe-child.mjs';
import { deferredStates } from '../../dist/deferred-modules.js';
import { createVaultClient, deferredDependencies, fetchApiGlobals, nodeVaultBundle, unwrapVaultGrant } from '../../dist/secrets/vault-unwrap.js';
import { bundleState, skipModuleBundle } from '../../dist/module-bundles/module-bundle.js';

const deferredDependencyStates = () => deferredStates(deferredDependencies);

// Read before anything loads node-vault (reading the descriptors does not run the globals' lazy getters).
const descriptors = () => fetchApiGlobals.map((name) => Object.getOwnPropertyDescriptor(globalThis, name));
const fetchApiAtStart = descriptors();
const undiciLoaded = () => process.moduleLoadList.some((name) => name.includes('internal/deps/undici'));
const undiciAtStart = undiciLoaded();

async function unwrap({ grant, source = 'bundle' }) {
  if (source === 'packages') skipModuleBundle(nodeVaultBundle);
  const value = await unwrapVaultGrant(grant);
  const undici = undiciAtStart ? 'loaded before' : undiciLoaded();
  const now = descriptors();
  const fetchApiAsBefore = fetchApiAtStart.every((before, i) => {
    const after = now[i];
    return !!before && !!after && Object.keys({ ...before, ...after }).every((key) => Object.is(before[key], after[key]));
  });
  // And usable: the real Request class (this read loads undici, so it comes last).
  return { value, states: deferredDependencyStates(), nodeVault: bundleState(nodeVaultBundle), undici, fetchApiAsBefore, request: typeof new Request('http://x/').method };
}

/** A proxy that answers every CONNECT with 502 and remembers the request line. */
async function refusingProxy() {
  const requests = [];
  const server = createServer((socket) => {
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      requests.push(head.split('\r\n')[0]);
      socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: server.address().port, requests, close: () => server.close() };
}

async function useEach() {
  createVaultClient({ address: 'http://127.0.0.1:8200', token: 'probe' }); // loads node-vault, defers the rest
  const before = deferredDependencyStates();
  const axios = createRequire(createRequire(import.meta.url).resolve('node-vault'))('axios');
  // axios builds multipart bodies with form-data (its platform's FormData class: the stand-in).
  const form = axios.toFormData({ entity: 'x' });
  // An https request through an HTTP proxy goes through axios's tunnelling agent, https-proxy-agent.
  const proxy = await refusingProxy();
  const proxied = await axios
    .get('https://vault.example.invalid:8200/v1/sys/health', { proxy: { protocol: 'http', host: '127.0.0.1', port: proxy.port }, timeout: 5000 })
    .then(() => 'answered', (error) => error.code ?? error.message);
  proxy.close();
  const uses = {
    formBody: form.getBuffer().toString(),
    formIsFormData: form instanceof axios.defaults.env.FormData,
    proxyRequests: proxy.requests,
    proxiedOutcome: proxied,
  };
  return { uses, before, after: deferredDependencyStates() };
}

serveProbe({ unwrap, 'use-each': useEach }, deferredDependencies);
