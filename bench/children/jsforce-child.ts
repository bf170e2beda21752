// An empty child that first loads jsforce: the difference between its start-up and empty-child.ts's is what
// loading jsforce costs each task child. bench/dispatch.ts runs it four ways:
//   --switchyard           jsforce's core and Metadata API exactly as a Switchyard Salesforce operation loads
//                          them (src/workers/operations/salesforce/load-jsforce.ts): from the prebuilt bundle
//                          with its code cache (src/module-bundles/), which the benchmark builds first;
//   --switchyard-packages  the same from node_modules, module by module (require(), deferred dependencies), as
//                          a Salesforce child loads them when there is no bundle;
//   <module names>         those modules with import(), each in turn (e.g. the core and the Metadata API);
//   (nothing)              import('jsforce'), the package's index, which loads every API.
// It says where jsforce came from in its `ready` message, so the benchmark can tell a bundle that was not used.
const args = process.argv.slice(2);
let from: unknown;
// Imported only here, so the import() variants load nothing they do not measure.
if (args[0] === '--switchyard' || args[0] === '--switchyard-packages') {
  const { loadJsforce } = await import('../../src/workers/operations/salesforce/load-jsforce.js');
  const { jsforceBundle } = await import('../../src/workers/operations/salesforce/jsforce-bundle.js');
  const { bundleState, skipModuleBundle } = await import('../../src/module-bundles/module-bundle.js');
  if (args[0] === '--switchyard-packages') skipModuleBundle(jsforceBundle);
  await loadJsforce(['metadata']);
  from = bundleState(jsforceBundle);
} else for (const name of args.length > 0 ? args : ['jsforce']) await import(name); // names in variables, so tsc does not type-check jsforce here
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage(), from }, undefined, {}, () => process.exit(0));
else process.exit(0);
