export class ChildSession {
    child;
    hooks;
    graceMs;
    abortReason = null;
    report = null;
    chain = Promise.resolve();
    timers = [];
    constructor(child, hooks, graceMs) {
        this.child = child;
        this.hooks = hooks;
        this.graceMs = graceMs;
    }
    get pid() {
        return this.child.process.pid;
    }
    async run(request) {
        const proc = this.child.process;
        // Messages can still arrive after 'exit'; the IPC channel's 'disconnect' comes after the last of them.
        const channelClosed = new Promise((resolve) => (proc.connected ? proc.once('disconnect', () => resolve()) : resolve()));
        const exited = new Promise((resolve) => {
            if (proc.exitCode !== null || proc.signalCode !== null)
                resolve({ code: proc.exitCode, signal: proc.signalCode });
            else
                proc.once('exit', (code, signal) => resolve({ code, signal }));
        }).then(async (status) => {
            await channelClosed;
            return status;
        });
        proc.on('message', (message) => {
            // Handled one after another so events keep the order the child sent them in.
            this.chain = this.chain.then(() => this.handle(message)).catch(() => undefined);
        });
        try {
            await this.child.ready;
            this.send({ t: 'run', request });
        }
        catch {
            // The child died before it was ready; `exited` reports how.
        }
        const { code, signal } = await exited;
        this.timers.forEach(clearTimeout);
        await this.chain;
        if (this.report?.kind === 'succeeded')
            return this.report;
        if (this.abortReason)
            return { kind: 'aborted', reason: this.abortReason };
        return this.report ?? { kind: 'crashed', exitCode: code, signal };
    }
    /** Asks the operation to stop; if it does not exit in time it gets SIGTERM, then SIGKILL. */
    abort(reason) {
        if (this.abortReason)
            return;
        this.abortReason = reason;
        const proc = this.child.process;
        this.send({ t: 'abort', reason: reason === 'timeout' ? 'The task timed out' : 'The task was cancelled' });
        this.timers.push(setTimeout(() => proc.kill('SIGTERM'), this.graceMs), setTimeout(() => proc.kill('SIGKILL'), this.graceMs * 2));
    }
    send(message) {
        if (this.child.process.connected)
            this.child.process.send(message);
    }
    async handle(message) {
        switch (message.t) {
            case 'progress':
                return this.hooks.onProgress(message.percent, message.phase, message.details);
            case 'log':
                return this.hooks.onLog(message.level, message.message);
            case 'redeem': {
                const value = await this.hooks.redeem(message.token).catch(() => null);
                this.send(value ? { t: 'credentials', value } : { t: 'credentials', value: null, error: 'The credential grant is spent, expired or unknown' });
                return;
            }
            case 'done':
                this.report = { kind: 'succeeded', result: message.result };
                return;
            case 'failed':
                this.report = { kind: 'failed', code: message.code, message: message.message, retryable: message.retryable, details: message.details };
                return;
            default:
                return;
        }
    }
}
