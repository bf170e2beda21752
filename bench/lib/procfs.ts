// CPU accounting from /proc (Linux), shared by the benchmarks in bench/: every figure is 0 where there is no /proc.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export const tickMs = 10; // USER_HZ is 100 on Linux

export function statFields(path: string): string[] | null {
  try {
    const raw = readFileSync(path, 'utf8');
    return raw.slice(raw.lastIndexOf(')') + 2).split(' '); // fields from "state" (field 3) on
  } catch {
    return null;
  }
}

/** Field n (1-based, as in proc(5)) of a stat line split by statFields, in ms. */
export const statMs = (fields: string[] | null, n: number) => Number(fields?.[n - 3] ?? 0) * tickMs;

/** CPU time a process has used itself, user + system (stat fields 14 and 15), ms. */
export const ownCpuMs = (fields: string[] | null) => statMs(fields, 14) + statMs(fields, 15);

/** The servers a benchmark drives: a Postgres backend with the local port of its client, or redis-server (port null). */
export interface ServerProcess {
  comm: 'postgres' | 'redis-server';
  /** CPU time used so far, user + system, ms. */
  ms: number;
  port: number | null;
}

/**
 * Every Postgres backend that serves a TCP client, by pid with its client's port (so a benchmark can keep the
 * backends of one process's pool), and every redis-server. Postgres's own processes (checkpointer, walwriter, …)
 * name no client and are left out. Empty without /proc.
 */
export function serverProcesses(): Map<number, ServerProcess> {
  const byPid = new Map<number, ServerProcess>();
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let comm: string;
      try {
        comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      if (comm !== 'postgres' && comm !== 'redis-server') continue;
      let port: number | null = null;
      if (comm === 'postgres') {
        // A backend's command line names its client: "postgres: 15/main: postgres switchyard_test 127.0.0.1(34394) idle".
        try {
          const found = /\((\d+)\)/.exec(readFileSync(`/proc/${entry}/cmdline`, 'utf8'))?.[1];
          if (!found) continue;
          port = Number(found);
        } catch {
          continue;
        }
      }
      byPid.set(Number(entry), { comm, ms: ownCpuMs(statFields(`/proc/${entry}/stat`)), port });
    }
  } catch {
    // no /proc: no processes
  }
  return byPid;
}

/** Busy and total CPU time of the whole machine (all cores, all processes) since boot, from /proc/stat, ms; zeros without /proc. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
    const total = (user + nice + system + idle + iowait + irq + softirq + steal) * tickMs;
    return { busy: total - (idle + iowait) * tickMs, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Local TCP ports of a process's connections to port 5432 (its Postgres pool); `'self'` for this process. */
export function postgresPortsOf(pid: number | 'self'): Set<number> {
  const ports = new Set<number>();
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) inodes.add(match[1]!);
      } catch {
        // closed meanwhile
      }
    }
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      for (const row of text.split('\n').slice(1)) {
        const cols = row.trim().split(/\s+/);
        if (cols.length < 10 || !inodes.has(cols[9]!)) continue;
        if (parseInt(cols[2]!.split(':')[1]!, 16) === 5432) ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
      }
    }
  } catch {
    // no /proc
  }
  return ports;
}
