// The V8 CPU profiler of a benchmark process and summaries of what it records (node:inspector Profiler.stop()
// output), shared by the benchmark API processes and bench/dispatch.ts.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionSelfTime {
  name: string;
  url: string;
  line: number;
  selfMs: number;
}

/** What an API process reports for one profile (its reply to profile-stop, see api-server.ts), before the file. */
export interface ProfileFigures {
  totalMs: number;
  samples: number;
  functions: FunctionSelfTime[];
  packages: Array<{ name: string; selfMs: number }>;
}

/** The reply to profile-stop as the benchmark reads it: the figures and the .cpuprofile file kept (null: none taken). */
export interface ProfileSummary extends ProfileFigures {
  file: string | null;
}

/**
 * Self time per sampled node (µs) and per function (ms, heaviest first). URLs are shortened: `node_modules/…`
 * for packages, `src/…` (relative to dist-bench/) for Switchyard's own sources.
 */
export function selfTimes(profile: Profile): { byNode: Map<number, ProfileNode>; selfUs: Map<number, number>; samples: number[]; functions: FunctionSelfTime[] } {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i += 1) {
    // timeDeltas[i] is the time before sample i; attribute the following interval to sample i.
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const byFunction = new Map<string, FunctionSelfTime>();
  for (const [id, us] of selfUs) {
    const frame = byNode.get(id)?.callFrame;
    if (!frame) continue;
    const name = frame.functionName || '(anonymous)';
    const url = frame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/dist-bench\//, '');
    const key = `${name}|${url}|${frame.lineNumber}`;
    const entry = byFunction.get(key) ?? { name, url, line: frame.lineNumber + 1, selfMs: 0 };
    entry.selfMs += us / 1000;
    byFunction.set(key, entry);
  }
  const functions = [...byFunction.values()].sort((a, b) => b.selfMs - a.selfMs);
  return { byNode, selfUs, samples, functions };
}

/**
 * Self time per package (node_modules/<name>), Node internals, our sources (`src/…`, as selfTimes shortens them)
 * and V8's own entries, heaviest first.
 */
export function selfTimeByPackage(functions: FunctionSelfTime[]): Array<{ name: string; selfMs: number }> {
  const byPackage = new Map<string, number>();
  for (const f of functions) {
    const group = f.url.startsWith('node_modules/')
      ? f.url.split('/').slice(1, f.url.split('/')[1]!.startsWith('@') ? 3 : 2).join('/')
      : f.url.startsWith('node:')
        ? 'node: (internals)'
        : f.url === ''
          ? f.name.startsWith('(') ? f.name : '(native)'
          : f.url.startsWith('src/')
            ? 'switchyard src/'
            : f.url;
    byPackage.set(group, (byPackage.get(group) ?? 0) + f.selfMs);
  }
  return [...byPackage.entries()].map(([name, selfMs]) => ({ name, selfMs })).sort((a, b) => b.selfMs - a.selfMs);
}

/**
 * The V8 CPU profiler of this process (node:inspector), sampling every `intervalUs` µs. Each profile is written
 * to `<filePrefix>-<pid>-<time>.cpuprofile` in the temp directory, so it can be opened in DevTools afterwards.
 */
export class CpuProfiler {
  private session: Session | null = null;

  constructor(
    private readonly intervalUs: number,
    private readonly filePrefix: string,
  ) {}

  async start(): Promise<void> {
    const session = new Session();
    this.session = session;
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: this.intervalUs });
    await session.post('Profiler.start');
  }

  /** The profile since `start()` and the file it was kept in; null if the profiler was not started. */
  async stop(): Promise<{ profile: Profile; file: string } | null> {
    const session = this.session;
    if (!session) return null;
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    this.session = null;
    const file = join(tmpdir(), `${this.filePrefix}-${process.pid}-${Date.now()}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return { profile: profile as unknown as Profile, file };
  }
}
