// A child started from a child snapshot with the product's preload (src/workers/child-snapshot/snapshot-preload.ts:
// jsforce's core and Metadata API) and, instead of the task runtime, a main function that measures: it takes
// jsforce as a Salesforce operation does (loadJsforce, as connect() calls it), has Node load its HTTPS stack
// (which the snapshot leaves out until first use, as any first request would), then reports its own CPU time,
// like jsforce-child.ts. bench/dispatch.ts bundles it as `npm run build` bundles the product's script
// (src/scripts/build-child-snapshot.ts) and makes a snapshot of it as a worker does (child-snapshot.ts).
import { startupSnapshot } from 'node:v8';
import { publishPreloaded, snapshotUse } from '../../src/workers/child-snapshot/preloaded.js';
import { preloadedForThisChild } from '../../src/workers/child-snapshot/snapshot-preload.js';
import { loadJsforce } from '../../src/workers/operations/salesforce/load-jsforce.js';

startupSnapshot.setDeserializeMainFunction(async () => {
  publishPreloaded(preloadedForThisChild());
  const jsforce = await loadJsforce(['metadata']);
  const conn = new jsforce.Connection({ instanceUrl: 'https://bench.my.salesforce.com', accessToken: 'bench' });
  const https = await import('node:https'); // in the child: the snapshot cannot hold it
  if (typeof conn.metadata.deploy !== 'function' || typeof https.request !== 'function') throw new Error('jsforce or https is missing');
  const snapshot = snapshotUse();
  process.send!({ t: 'ready', cpu: process.cpuUsage(), from: snapshot, snapshot }, undefined, {}, () => process.exit(0));
});
