// The emptiest useful task child: loads nothing, says `ready` over IPC (as child-main does) and exits.
// Forked by bench/dispatch.ts to measure Node's own start-up cost and the machine's fork ceiling. It reports
// its own CPU time so far, which is less disturbed by other load on the machine than wall time.
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage() }, undefined, {}, () => process.exit(0));
else process.exit(0);
