// CPU accounting from /proc (Linux), shared by the benchmarks in bench/.
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
