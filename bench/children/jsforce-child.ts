// An empty child that first loads jsforce: the difference between its start-up and empty-child.ts's is what
// loading jsforce costs each task child. bench/dispatch.ts runs it three ways:
//   --switchyard      jsforce's core and Metadata API exactly as a Switchyard Salesforce operation loads them
//                     (src/workers/operations/salesforce/load-jsforce.ts: require(), deferred dependencies);
//   <module names>    those modules with import(), each in turn (e.g. the core and the Metadata API);
//   (nothing)         import('jsforce'), the package's index, which loads every API.
const args = process.argv.slice(2);
// Imported only here, so the import() variants load nothing they do not measure.
if (args[0] === '--switchyard') (await import('../../src/workers/operations/salesforce/load-jsforce.js')).loadJsforce(['metadata']);
else for (const name of args.length > 0 ? args : ['jsforce']) await import(name); // names in variables, so tsc does not type-check jsforce here
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage() }, undefined, {}, () => process.exit(0));
else process.exit(0);
