// Loads jsforce inside the per-task child: its core, plus the API modules an operation asks for (each
// registers itself on Connection when imported), from the prebuilt bundle `npm run build` makes
// (jsforce-bundle.ts) or, without one, from node_modules. The package's index is never loaded: it also loads
// Bulk, Bulk 2.0, Chatter, Analytics, Apex, Tooling, SOAP and the Streaming API (with its Faye client).
//
// jsforce also requires, when it loads, packages that only serve paths Switchyard's operations never take.
// Together they are about half of what loading jsforce costs (node-fetch's whatwg-url fallback alone parses
// a 260 KB Unicode table). They stay stand-ins until first use (deferred-modules.ts).
// test/load-jsforce.test.ts checks both halves: a Metadata API deploy, a query and a token refresh load none
// of them, and each still works when used.
import { createRequire } from 'node:module';
import { deferDependencies, type DeferredDependency } from '../../../deferred-modules.js';
import { bundleDirectory, openJsforceBundle } from './jsforce-bundle.js';

const require = createRequire(import.meta.url);

export const deferredDependencies: readonly DeferredDependency[] = [
  {
    request: 'whatwg-url',
    via: ['jsforce/lib/core.js', 'node-fetch'],
    usedFor: "node-fetch's URL class where the runtime has none; Node always has one",
  },
  {
    request: 'form-data',
    via: ['jsforce/lib/core.js'],
    usedFor: 'multipart bodies: REST-style Metadata deploys (rest: true) and blob uploads; deploys here use SOAP',
  },
  ...['csv-parse', 'csv-parse/sync', 'csv-stringify', 'csv-stringify/sync'].map((request) => ({
    request,
    via: ['jsforce/lib/core.js'],
    usedFor: 'CSV bodies (Bulk API, text/csv responses); operations here get JSON and XML',
  })),
  {
    request: 'xmlbuilder',
    via: ['jsforce/lib/core.js', 'xml2js'],
    usedFor: "xml2js's Builder; jsforce writes SOAP envelopes itself and only parses XML with xml2js",
  },
  {
    request: 'https-proxy-agent',
    via: ['jsforce/lib/core.js'],
    usedFor: 'requests through an HTTP(S) proxy: jsforce uses one when HTTPS_PROXY or HTTP_PROXY is set (the launcher passes them on), and then loads it on the first request',
  },
];

/** jsforce's core (Connection, OAuth2, query, sobject): what every Salesforce operation loads. */
export const coreModule = 'jsforce/lib/core.js';

/** jsforce API modules an operation may ask for; each registers itself on Connection when loaded. */
export const apiModules = {
  metadata: 'jsforce/lib/api/metadata.js',
};

/** The Metadata API's type schema, which the jsforce bundle replaces with a lazy one (lazy-metadata-schema.ts). */
export const schemaModule = 'jsforce/lib/api/metadata/schema.js';

export type JsforceApi = keyof typeof apiModules;

type JsforceCore = typeof import('jsforce/lib/core.js');

/**
 * What the jsforce bundle is built for: these lists. A bundle built for other lists (tsc run without a
 * rebuild of the bundle) is not used.
 */
export function listsFingerprint(): string {
  return JSON.stringify({ coreModule, apiModules, schemaModule, deferred: deferredDependencies.map((d) => [d.request, ...d.via]) });
}

/**
 * jsforce's core (Connection, OAuth2, query, sobject) with the given APIs registered on Connection: from the
 * prebuilt bundle (jsforce-bundle.ts) in `bundleDir`, or from node_modules when there is no current bundle.
 */
export function loadJsforce(apis: JsforceApi[] = [], bundleDir: string = bundleDirectory): JsforceCore {
  const bundle = openJsforceBundle(bundleDir, listsFingerprint()); // which defers the same dependencies, by the files the build resolved
  if (!bundle) return loadJsforceFromPackages(apis);
  const core = bundle.load('core') as JsforceCore;
  for (const api of apis) bundle.load(api);
  return core;
}

/**
 * The same, module by module from node_modules (what the bundle is built from and checked against).
 *
 * Loaded with require(), not import(): importing CommonJS from an ES module makes Node scan each module's
 * source for its named exports, following every re-export (jsforce's core re-exports six modules, the
 * Metadata API its 280 KB schema), which about doubles the CPU the load takes.
 */
export function loadJsforceFromPackages(apis: JsforceApi[] = []): JsforceCore {
  deferDependencies(deferredDependencies);
  const core = require(coreModule) as JsforceCore;
  for (const api of apis) require(apiModules[api]);
  return core;
}
