// What a task child may load of jsforce, as one module bundle (module-bundles/module-bundle.ts): its core, the
// API modules operations ask for, and the packages jsforce requires when it loads that Switchyard never uses.
// load-jsforce.ts loads it; `npm run build` builds it (and the child snapshot from the same list,
// workers/child-snapshot/).
//
// jsforce requires, when it loads, packages that only serve paths Switchyard's operations never take.
// Together they are about half of what loading jsforce costs (node-fetch's whatwg-url fallback alone parses
// a 260 KB Unicode table). They stay stand-ins until first use (deferred-modules.ts).
// test/load-jsforce.test.ts checks both halves: a Metadata API deploy, a query and a token refresh load none
// of them, and each still works when used.
import type { DeferredDependency } from '../../../deferred-modules.js';
import type { BundleSpec } from '../../../module-bundles/module-bundle.js';

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

/**
 * What a Salesforce operation may load of jsforce: its core (Connection, OAuth2, query, sobject) and the API
 * modules an operation asks for, each of which registers itself on Connection when loaded.
 */
export const jsforceEntries = {
  core: 'jsforce/lib/core.js',
  metadata: 'jsforce/lib/api/metadata.js',
} as const;

export type JsforceApi = Exclude<keyof typeof jsforceEntries, 'core'>;

/**
 * jsforce's bundle (module-bundle.ts): those entries, without the deferred dependencies, and with the Metadata
 * API's type schema built one type at a time when jsforce reads it (lazy-data-module.ts).
 */
export const jsforceBundle: BundleSpec = {
  name: 'jsforce',
  from: import.meta.url,
  entries: jsforceEntries,
  deferred: deferredDependencies,
  lazyData: { request: 'jsforce/lib/api/metadata/schema.js', exportName: 'ApiSchemas' },
};

export type JsforceCore = typeof import('jsforce/lib/core.js');
