// Loads jsforce inside the per-task child: its core, plus the API modules an operation asks for (each
// registers itself on Connection when imported). The package's index is never imported: it also loads Bulk,
// Bulk 2.0, Chatter, Analytics, Apex, Tooling, SOAP and the Streaming API (with its Faye client).
//
// jsforce also requires, when it loads, packages that only serve paths Switchyard's operations never take.
// Together they are about half of what loading jsforce costs (node-fetch's whatwg-url fallback alone parses
// a 260 KB Unicode table). They stay stand-ins until first use (deferred-modules.ts).
// test/load-jsforce.test.ts checks both halves: a Metadata API deploy, a query and a token refresh load none
// of them, and each still works when used.
import { createRequire } from 'node:module';
import { deferDependencies, type DeferredDependency } from '../../../deferred-modules.js';

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

/** jsforce API modules an operation may ask for; each registers itself on Connection when loaded. */
const apiModules = {
  metadata: 'jsforce/lib/api/metadata.js',
};

export type JsforceApi = keyof typeof apiModules;

/**
 * jsforce's core (Connection, OAuth2, query, sobject) with the given APIs registered on Connection.
 *
 * Loaded with require(), not import(): importing CommonJS from an ES module makes Node scan each module's
 * source for its named exports, following every re-export (jsforce's core re-exports six modules, the
 * Metadata API its 280 KB schema), which about doubles the CPU the load takes.
 */
export function loadJsforce(apis: JsforceApi[] = []): typeof import('jsforce/lib/core.js') {
  deferDependencies(deferredDependencies);
  const core = require('jsforce/lib/core.js') as typeof import('jsforce/lib/core.js');
  for (const api of apis) require(apiModules[api]);
  return core;
}
