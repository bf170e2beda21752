// CPU and memory of a child process, read from Linux's /proc (elsewhere: unknown). CPU % is measured
// between two samples of the same pid, so the first sample of a child reports null.
import { readFile } from 'node:fs/promises';

const clockTicksPerSecond = 100; // USER_HZ on Linux

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
      const [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
      // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
      // In kB, whatever the page size (stat's rss counts pages: 4 KiB on x86-64, 64 KiB on some arm64 kernels).
      const rssKb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
      const rssBytes = rssKb === undefined ? null : Number(rssKb) * 1024;
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
