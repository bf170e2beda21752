// An empty child that loads Node's HTTPS stack, as any HTTPS client does (jsforce's node-fetch, on its first
// request in a child from the snapshot): the floor that a Salesforce child's cost is read against in
// bench/dispatch.ts, next to the empty child.
await import('node:https');
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage() }, undefined, {}, () => process.exit(0));
else process.exit(0);
