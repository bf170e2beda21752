// What a task child started from the child snapshot has loaded already. The snapshot's script
// (snapshot-main.ts, bundled as CommonJS) and the ES modules the child imports after it starts
// (child-main.ts, load-jsforce.ts) do not share module instances, so the hand-over is a registered symbol on
// globalThis. A child not started from the snapshot has nothing there and loads what it needs as usual.
import type { JsforceApi, JsforceCore } from '../operations/salesforce/jsforce-bundle.js';

const slot = Symbol.for('switchyard.child-snapshot');

/**
 * How a child used the snapshot it started from: its libraries (`preloaded`), or not, because the environment
 * it was started with differs from the one the snapshot was made in (`environment-changed`: what the libraries
 * computed from it when they loaded would be stale, so they load again, from their bundle).
 */
export type SnapshotUse = 'preloaded' | 'environment-changed';

export type Preloaded = { use: 'preloaded'; jsforce: { core: JsforceCore; apis: readonly JsforceApi[] } } | { use: 'environment-changed' };

/** Called once, by the snapshot's main function, before the child's entry point is imported. */
export function publishPreloaded(preloaded: Preloaded): void {
  Object.defineProperty(globalThis, slot, { value: Object.freeze(preloaded), enumerable: false, writable: false, configurable: false });
}

function published(): Preloaded | undefined {
  return (globalThis as Record<symbol, Preloaded | undefined>)[slot];
}

/** How this child used a snapshot; undefined when it did not start from one. */
export function snapshotUse(): SnapshotUse | undefined {
  return published()?.use;
}

/** The snapshot's jsforce core, if this child has one with every API asked for registered. */
export function preloadedJsforce(apis: readonly JsforceApi[]): JsforceCore | undefined {
  const preloaded = published();
  if (preloaded?.use !== 'preloaded' || !apis.every((api) => preloaded.jsforce.apis.includes(api))) return undefined;
  return preloaded.jsforce.core;
}
