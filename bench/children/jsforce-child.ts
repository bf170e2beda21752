// An empty child that first loads jsforce, as a Salesforce operation would: the difference between its
// start-up and empty-child.ts's is what importing jsforce costs each task child.
const moduleName = 'jsforce'; // a variable, so tsc does not type-check jsforce's declarations for this
await import(moduleName);
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage() }, undefined, {}, () => process.exit(0));
else process.exit(0);
