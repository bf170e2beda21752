// Forks the per-task child processes. Each child runs one operation and exits; none is ever reused (unlike
// BullMQ's sandboxed processors, which pool them). To take Node's start-up cost off the dispatch path, one
// spare child is forked ahead of time: it has loaded nothing but its entry point and never held credentials.
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
/**
 * The compiled child entry point. Tests run the TypeScript sources, but children always run the build in
 * dist/ (made by `npm run build`), exactly as in production.
 */
export function childEntryPoint() {
    const here = fileURLToPath(import.meta.url);
    const compiled = here.endsWith('.ts') ? fileURLToPath(new URL('../../dist/workers/child-main.js', import.meta.url)) : fileURLToPath(new URL('./child-main.js', import.meta.url));
    if (!existsSync(compiled))
        throw new Error(`Child entry point ${compiled} is missing: run \`npm run build\``);
    return compiled;
}
/**
 * What a child inherits: enough to run Node, nothing that is a secret. Database and Redis URLs, the secret
 * key and Vault credentials stay in the worker.
 */
function childEnvironment() {
    const keep = ['PATH', 'HOME', 'LANG', 'TZ', 'NODE_ENV', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY'];
    return Object.fromEntries(keep.filter((key) => process.env[key] !== undefined).map((key) => [key, process.env[key]]));
}
export class ChildLauncher {
    options;
    spare = null;
    closed = false;
    entry = childEntryPoint();
    constructor(options) {
        this.options = options;
        if (options.keepSpare)
            this.spare = this.launch(true);
    }
    /** Pid of the pre-forked spare child waiting to be taken, if any (read-only; for tests and diagnostics). */
    get sparePid() {
        return this.spare?.process.pid;
    }
    /**
     * A fresh child for one operation; with keepSpare, the spare is handed out and a new one forked. The new
     * spare is forked on the next turn of the event loop: fork() blocks this process for tens of milliseconds
     * (the kernel copies the page tables of the whole worker), and the child just taken should get its request
     * before that.
     */
    take() {
        if (this.closed)
            throw new Error('ChildLauncher is closed');
        let child = this.spare;
        this.spare = null;
        if (!child || child.process.exitCode !== null || child.process.signalCode !== null || !child.process.connected) {
            child = this.launch(false);
        }
        if (this.options.keepSpare)
            setImmediate(() => this.replenish());
        return child;
    }
    replenish() {
        if (!this.closed && !this.spare)
            this.spare = this.launch(true);
    }
    async close() {
        this.closed = true;
        const spare = this.spare;
        this.spare = null;
        if (spare && spare.process.exitCode === null) {
            const exited = new Promise((resolve) => spare.process.once('exit', resolve));
            spare.process.kill('SIGTERM');
            await exited;
        }
    }
    launch(wasSpare) {
        const child = fork(this.entry, [], {
            env: childEnvironment(),
            execArgv: [],
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
            serialization: 'json',
        });
        const ready = new Promise((resolve, reject) => {
            const onMessage = (message) => {
                if (message.t !== 'ready')
                    return;
                child.off('message', onMessage);
                child.off('exit', onExit);
                resolve();
            };
            const onExit = (code, signal) => reject(new Error(`child exited before it was ready (code ${code}, signal ${signal})`));
            child.on('message', onMessage);
            child.once('exit', onExit);
        });
        ready.catch(() => undefined); // observed by whoever takes the child
        return { process: child, ready, wasSpare };
    }
}
