// The script the child snapshot is made of (child-snapshot.ts makes the snapshot; `npm run build` bundles this
// module, the child's runtime, jsforce and what they load into one CommonJS file,
// src/scripts/build-child-snapshot.ts).
//
// A task child that talks to Salesforce loads jsforce, and every child is a fresh process, so each would pay
// again for compiling and running jsforce's modules: about a third as much CPU as Node's own start-up. Node can
// instead start a process from a V8 startup snapshot (`--snapshot-blob`): a heap saved after this script ran,
// with jsforce's core and Metadata API loaded. A child started from it deserialises that heap instead of loading
// jsforce, then runs the main function below: the same child runtime as child-main.ts, bundled here too (as
// CommonJS: code restored from a snapshot has no import() in Node 20, and Node's ES module loader, which a
// snapshot does not hold, would cost a child more than jsforce now does). Only jsforce and the modules it loads
// run while the snapshot is made; the runtime and the operations run in the child.
// The snapshot holds no credentials: it is made by a separate process that never sees a task, in the environment
// the launcher gives children (childEnvironment()), which holds no database, Redis or store secret.
//
// What a snapshot cannot hold: Node's http, https and tls modules (Node 20 cannot snapshot them), child_process,
// dgram, module and vm, and the packages jsforce's bundle defers (jsforce-bundle.ts). The build makes each a lazy module
// (lazy-module.ts) that loads the real one on first use, after the child started.
//
// What the snapshot preloads, and what a child may use of it, is snapshot-preload.ts.
import { startupSnapshot } from 'node:v8';
import { publishPreloaded } from './preloaded.js';
import { preloadedForThisChild } from './snapshot-preload.js';

startupSnapshot.setDeserializeMainFunction(() => {
  publishPreloaded(preloadedForThisChild());
  // Bundled: this import only runs the runtime's module, now, in the child.
  import('../child-runtime.js').then(
    ({ runChild }) => runChild(),
    (error: unknown) => {
      process.stderr.write(`switchyard task child ${process.pid}: its runtime failed to load (${error instanceof Error ? error.name : typeof error}), exiting\n`);
      process.exit(72);
    },
  );
});
