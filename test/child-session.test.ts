// ChildSession (src/workers/child-session.ts), the worker's side of one child's IPC, with real child processes
// that speak the protocol in a chosen order (test/fixtures/ipc-child/child.mjs).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ChildLauncher, type LaunchedChild } from '../src/workers/child-launcher.js';
import { ChildSession, type SessionHooks } from '../src/workers/child-session.js';
import type { RunRequest } from '../src/workers/ipc-protocol.js';
import { cut, logLimitNotice, maxLogLineChars, maxLogLinesPerRun, maxPhaseChars, mergeProgressAfter, ReportQueue } from '../src/workers/report-queue.js';

const fixture = fileURLToPath(new URL('./fixtures/ipc-child/child.mjs', import.meta.url));

function launch(mode: string): LaunchedChild {
  const child = fork(fixture, [mode], { serialization: 'json', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', () => reject(new Error('exited before ready')));
  });
  return { process: child, ready, wasSpare: false, fromSnapshot: false };
}

/** Hooks that do nothing (a grant asked for is refused), with the given ones in their place. */
function hooks(given: Partial<SessionHooks> = {}): SessionHooks {
  return {
    onProgress: async () => undefined,
    onLog: async () => undefined,
    redeem: async () => null,
    issueGrant: async () => ({ error: 'not asked for in this test', retryable: false }),
    ...given,
  };
}

/** A Vault grant as the worker would pass it on (its token wraps nothing here). */
const vaultGrant = (token: string) => ({ kind: 'vault' as const, address: 'http://127.0.0.1:1', token, expiresAt: new Date(Date.now() + 60_000).toISOString() });

const request = (token: string | null): RunRequest => ({
  taskId: '00000000-0000-4000-8000-000000000001',
  type: 'DIAGNOSTIC',
  attempt: 1,
  maxAttempts: 1,
  params: {},
  org: { alias: 'uat', instanceUrl: 'https://example.my.salesforce.com' },
  grant: token === null ? { kind: 'ask' } : { kind: 'ipc', token, expiresAt: new Date(Date.now() + 60_000).toISOString() },
  files: { artifactDir: '/nonexistent' },
});

describe('ChildSession with the real task child', () => {
  it('a child waiting for its grant stops waiting when its run is stopped: it exits at once, not when the slow grant comes', { timeout: 20_000 }, async () => {
    // The child used to wait for the grant's answer whatever happened meanwhile: a cancel or a timeout during a
    // slow Vault round trip (up to 10 s a request) used up the run's kill grace before the child even looked.
    let asked: () => void = () => undefined;
    const askedFor = new Promise<void>((resolve) => (asked = resolve));
    const given = hooks({
      issueGrant: async () => {
        asked();
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        return vaultGrant('wrap-late');
      },
    });
    const launched = new ChildLauncher({ keepSpare: false }).take(); // child-main.js, forked as a worker forks it
    const child = launched.process;
    const session = new ChildSession(launched, given, 10_000);
    const outcome = session.run({ ...request(null), params: { steps: 1, stepMs: 0, readCredentials: true } });
    await askedFor;
    const exited = new Promise<number>((resolve) => child.once('exit', () => resolve(Date.now())));
    const stoppedAt = Date.now();
    session.abort('cancelled');
    // The child reports and exits at once; the session settles once the grant under way has come (and is dropped).
    expect((await exited) - stoppedAt).toBeLessThan(2_000);
    expect(await outcome).toMatchObject({ kind: 'aborted', reason: 'cancelled', report: { kind: 'failed', code: 'ABORTED' } });
  });
});

describe('ChildSession', () => {
  it('warns that log lines are dropped only once one is: a run that logs exactly the limit keeps them all', async () => {
    const handled: string[] = [];
    const queue = new ReportQueue(async (report) => void handled.push(report.t === 'log' ? report.message : `${report.percent}%`));
    for (let i = 1; i <= maxLogLinesPerRun; i += 1) queue.push({ t: 'log', level: 'info', message: `line ${i}` });
    await queue.idle();
    expect(handled).toHaveLength(maxLogLinesPerRun);
    expect(handled).not.toContain(logLimitNotice);
    for (let i = 0; i < 3; i += 1) queue.push({ t: 'log', level: 'info', message: 'one too many' });
    queue.push({ t: 'progress', percent: 100 });
    await queue.idle();
    expect(handled.slice(maxLogLinesPerRun)).toEqual([logLimitNotice, '100%']);
    expect(queue.droppedLogLines).toBe(3);
  });

  it('cuts a long line without splitting a character in two', () => {
    expect(cut('a\u{1F600}b', 2)).toBe('a… [3 characters cut]');
    expect(cut('ab\u{1F600}', 2)).toBe('ab… [2 characters cut]');
    expect(cut('abc', 3)).toBe('abc');
  });

  it('keeps what a flooding child reports bounded and in order: log lines capped and cut, progress waiting behind a slow write merged', async () => {
    const timeline: unknown[] = [];
    const launched = launch('flood');
    const disconnected = new Promise<void>((resolve) => launched.process.once('disconnect', () => resolve()));
    let first = true;
    const given = hooks({
      onProgress: async (percent, phase, details) => {
        // A slow first write: everything else the child sends waits behind it.
        if (first) {
          first = false;
          await disconnected;
        }
        timeline.push(['progress', percent, phase, details]);
      },
      onLog: async (level, message) => void timeline.push(['log', level, message]),
    });
    const outcome = await new ChildSession(launched, given, 5_000).run(request('grant-token'));
    expect(outcome).toEqual({ kind: 'succeeded', result: { flooded: true } });
    expect(timeline).toEqual([
      ['progress', 1, `${'p'.repeat(maxPhaseChars)}… [${1000 - maxPhaseChars} characters cut]`, { stage: 'start' }],
      ['log', 'info', `${'x'.repeat(maxLogLineChars)}… [${20_000 - maxLogLineChars} characters cut]`],
      // Each as it came until mergeProgressAfter reports wait (the long line, then progress 2 to 50), then the rest
      // merged into the last of them: the latest percent and phase, the details of all of them.
      ['progress', 2, undefined, { deployId: '0Af5g00000ABCDE' }],
      ...Array.from({ length: mergeProgressAfter - 3 }, (_, i) => ['progress', i + 3, `step ${i + 3}`, { step: i + 3 }]),
      ['progress', 99, 'step 99', { step: 99 }],
      ...Array.from({ length: maxLogLinesPerRun - 1 }, (_, i) => ['log', 'info', `line ${i + 1}`]),
      ['log', 'warn', logLimitNotice],
      ['progress', 100, 'finishing', undefined],
    ]);
  });

  it('answers a redemption at once, while the report the child sent before it is still being written', async () => {
    let redeemedBeforeWritten = false;
    let written = false;
    let redeemed: () => void = () => undefined;
    const redemption = new Promise<void>((resolve) => (redeemed = resolve));
    const given = hooks({
      // A progress write that does not finish (Postgres or Redis slow) until the credentials are out, or 5 s.
      onProgress: async () => {
        await Promise.race([redemption, new Promise((resolve) => setTimeout(resolve, 5000))]);
        written = true;
      },
      redeem: async (token) => {
        redeemedBeforeWritten = !written;
        redeemed();
        return token === 'grant-1' ? { refreshToken: 'r', instanceUrl: 'https://example.my.salesforce.com' } : null;
      },
    });
    const outcome = await new ChildSession(launch('progress-then-redeem'), given, 1000).run(request('grant-1'));
    expect(outcome).toEqual({ kind: 'succeeded', result: { redeemed: ['instanceUrl', 'refreshToken'] } });
    expect(redeemedBeforeWritten).toBe(true);
  });

  it('drops messages that are not the protocol\'s: the run goes on, and they reach no hook', async () => {
    // A child runs third-party code: `process.send(null)` from it used to throw in the worker's listener, which
    // ended the worker and every task it ran.
    const reports: unknown[] = [];
    const dropped: unknown[] = [];
    const given = hooks({
      onProgress: async (...args) => void reports.push(['progress', ...args]),
      onLog: async (...args) => void reports.push(['log', ...args]),
      onDropped: (kind) => void dropped.push(kind),
    });
    const outcome = await new ChildSession(launch('garbage-first'), given, 1000).run(request('grant-3'));
    expect(outcome).toEqual({ kind: 'succeeded', result: { sent: 10 } });
    expect(reports).toEqual([['progress', 50, 'halfway', undefined]]);
    // Each is reported by its kind alone, for the worker's log.
    expect(dropped).toEqual([undefined, undefined, undefined, undefined, undefined, 'progress', 'progress', 'failed', 'log', 'done-ish']);
  });

  it("refuses to redeem any token but its own request's grant, without spending it", async () => {
    const asked: string[] = [];
    const outcome = await new ChildSession(launch('foreign-token'), hooks({ redeem: async (token) => (asked.push(token), null) }), 1000).run(request('grant-2'));
    expect(outcome).toEqual({ kind: 'succeeded', result: { error: "The credential grant is not this process's" } });
    expect(asked).toEqual([]);
  });

  it('issues a grant left to be asked for when the child asks, once', async () => {
    let issued = 0;
    const given = hooks({ issueGrant: async () => ((issued += 1), vaultGrant(`wrap-${issued}`)) });
    const outcome = await new ChildSession(launch('ask-twice'), given, 1000).run(request(null));
    expect(outcome).toEqual({ kind: 'succeeded', result: [{ token: 'wrap-1' }, { error: "This run's grant was issued already", retryable: false }] });
    expect(issued).toBe(1);
  });

  it('refuses a grant to a run being stopped, but not to one that must cancel an earlier attempt\'s deployment', async () => {
    for (const resume of [undefined, { deployId: '0Af000000000001AAA' }]) {
      let issued = 0;
      let started: () => void = () => undefined;
      const running = new Promise<void>((resolve) => (started = resolve));
      const given = hooks({ onProgress: async () => started(), issueGrant: async () => ((issued += 1), vaultGrant('wrap-1')) });
      const session = new ChildSession(launch('ask-after-abort'), given, 2000);
      const outcome = session.run({ ...request(null), ...(resume ? { resume } : {}) });
      await running;
      session.abort('cancelled');
      const result = resume ? [{ token: 'wrap-1' }] : [{ error: 'The run is being stopped', retryable: false }];
      expect(await outcome, JSON.stringify(resume)).toEqual({ kind: 'succeeded', result });
      expect(issued).toBe(resume ? 1 : 0);
    }
  });
});
