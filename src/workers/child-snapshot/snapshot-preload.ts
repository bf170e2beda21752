// What the child snapshot holds loaded: jsforce's core and Metadata API (the entries of jsforce-bundle.ts),
// loaded when this module is, that is while the snapshot is made (snapshot-main.ts).
//
// A snapshot also keeps what modules computed from the environment when they loaded (jsforce reads proxy and log
// settings). So a child compares its environment with the one the snapshot was made in, and when they differ it
// does not use the preloaded jsforce: it loads jsforce from its bundle, as a child started without a snapshot
// does.
import * as core from 'jsforce/lib/core.js';
import 'jsforce/lib/api/metadata.js';
import type { JsforceCore } from '../operations/salesforce/jsforce-bundle.js';
import type { Preloaded } from './preloaded.js';
import { environmentKey } from './snapshot-environment.js';

const madeIn = environmentKey(process.env);

/** What this child, started from the snapshot, may use of it. */
export function preloadedForThisChild(): Preloaded {
  if (environmentKey(process.env) !== madeIn) return { use: 'environment-changed' };
  return { use: 'preloaded', jsforce: { core: core as unknown as JsforceCore, apis: ['metadata'] } };
}
