// What a task child started from the child snapshot has loaded already: the snapshot's main function
// (snapshot-main.ts) publishes it here, and load-jsforce.ts, bundled into the same script, takes jsforce from
// here. A child not started from the snapshot (child-main.ts) has nothing published and loads what it needs.
import type { JsforceApi, JsforceCore } from '../operations/salesforce/jsforce-bundle.js';

/**
 * How a child used the snapshot it started from: its libraries (`preloaded`), or not, because the environment
 * it was started with differs from the one the snapshot was made in (`environment-changed`: what the libraries
 * computed from it when they loaded would be stale, so they load again, from their bundle).
 */
export type SnapshotUse = 'preloaded' | 'environment-changed';

export type Preloaded = { use: 'preloaded'; jsforce: { core: JsforceCore; apis: readonly JsforceApi[] } } | { use: 'environment-changed' };

let published: Preloaded | undefined;

/** Called once, by the snapshot's main function, before the child's runtime starts. */
export function publishPreloaded(preloaded: Preloaded): void {
  published = preloaded;
}

/** How this child used a snapshot; undefined when it did not start from one. */
export function snapshotUse(): SnapshotUse | undefined {
  return published?.use;
}

/** The snapshot's jsforce core, if this child has one with every API asked for registered. */
export function preloadedJsforce(apis: readonly JsforceApi[]): JsforceCore | undefined {
  const preloaded = published;
  if (preloaded?.use !== 'preloaded' || !apis.every((api) => preloaded.jsforce.apis.includes(api))) return undefined;
  return preloaded.jsforce.core;
}
