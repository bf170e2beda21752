// empty-child.ts as a CommonJS module. Node starts a CommonJS main without its ES module loader, which an ES
// module main (empty-child.js, and Switchyard's task children) sets up first: bench/dispatch.ts reports both,
// so the fork ceiling (measured with the ES module one, as task children are) can be read against the
// cheapest Node child there is.
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage() }, undefined, {}, () => process.exit(0));
else process.exit(0);
