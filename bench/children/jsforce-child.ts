// An empty child that first loads jsforce modules: the difference between its start-up and empty-child.ts's is
// what importing them costs each task child. The modules come as arguments (default: the package's index,
// which loads every API); bench/dispatch.ts also passes what connect.ts loads for a Metadata API operation
// (jsforce/lib/core.js and jsforce/lib/api/metadata.js).
const modules = process.argv.length > 2 ? process.argv.slice(2) : ['jsforce'];
for (const name of modules) await import(name); // names in variables, so tsc does not type-check jsforce here
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage() }, undefined, {}, () => process.exit(0));
else process.exit(0);
