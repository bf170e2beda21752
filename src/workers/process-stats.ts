// CPU and memory of a child process, read from Linux's /proc (elsewhere: unknown). CPU % is measured
// between two samples of the same pid, so the first sample of a child reports null.
import { readFile } from 'node:fs/promises';

const clockTicksPerSecond = 100; // USER_HZ on Linux
const pageSize = 4096;

interface Sample {
  cpuSeconds: number;
  at: number;
}

export interface ProcessStats {
  cpuPercent: number | null;
  rssBytes: number | null;
}

export class ProcessSampler {
  private readonly last = new Map<number, Sample>();

  async sample(pid: number): Promise<ProcessStats> {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command name; utime and stime are fields 14 and 15, rss field 24.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
      const rssBytes = Number(fields[21]) * pageSize;
      const now = Date.now();
      const previous = this.last.get(pid);
      this.last.set(pid, { cpuSeconds, at: now });
      const cpuPercent =
        previous && now > previous.at ? Math.round(((cpuSeconds - previous.cpuSeconds) / ((now - previous.at) / 1000)) * 1000) / 10 : null;
      return { cpuPercent, rssBytes };
    } catch {
      this.last.delete(pid);
      return { cpuPercent: null, rssBytes: null };
    }
  }

  /** Drops samples of processes no longer asked about. */
  retain(pids: Set<number>): void {
    for (const pid of this.last.keys()) if (!pids.has(pid)) this.last.delete(pid);
  }
}
