// The reports of one task child (progress and log lines) on their way to the task's journal: handled one after
// another, in the order the child sent them, and bounded. The child runs third-party code (jsforce,
// node-vault) with an org's credentials and may send reports faster than Postgres takes them, or without end;
// each one written is a row, a Redis publish and a message to every subscriber of the task. So:
// - a run keeps at most maxLogLinesPerRun log lines (the first one dropped adds a warning saying so), each cut to
//   maxLogLineChars;
// - once mergeProgressAfter reports are waiting (the child sends faster than they are written), a progress report
//   is merged into the one before it if that is a progress report too: the latest percent and phase, and the
//   details of both key by key (a deployId reported once is not lost). Short of that, each report is written as it
//   came, so a burst of steps shows each step; a phase is cut to maxPhaseChars.
// However fast a child sends, the queue holds at most a progress report around each kept log line, and
// mergeProgressAfter more: about twice maxLogLinesPerRun. (Its outcome, done or failed, is not queued: the last
// one it sends counts, ChildSession keeps it.)
import type { ChildMessage } from './ipc-protocol.js';

export type Report = Extract<ChildMessage, { t: 'progress' | 'log' }>;
type Progress = Extract<Report, { t: 'progress' }>;

/** Most log lines one run writes to its task. */
export const maxLogLinesPerRun = 1000;
/** Longest log line kept, in characters (UTF-16 code units). */
export const maxLogLineChars = 8192;
/** Longest progress phase kept, in characters. */
export const maxPhaseChars = 200;
/** Reports waiting to be written beyond which progress reports are merged. */
export const mergeProgressAfter = 50;

export const logLimitNotice = `The operation logged more than ${maxLogLinesPerRun} lines, the most one run keeps: later lines are dropped`;

export class ReportQueue {
  private readonly waiting: Report[] = [];
  private logLines = 0;
  private dropped = 0;
  private draining = false;
  private drained: Promise<void> = Promise.resolve();

  /** `handle` takes one report at a time; a report it fails on is passed over. */
  constructor(private readonly handle: (report: Report) => Promise<void>) {}

  /** Log lines dropped over the limit so far. */
  get droppedLogLines(): number {
    return this.dropped;
  }

  push(report: Report): void {
    if (report.t === 'log') {
      if (this.logLines >= maxLogLinesPerRun) {
        this.dropped += 1;
        if (this.dropped > 1) return;
        this.waiting.push({ t: 'log', level: 'warn', message: logLimitNotice });
      } else {
        this.logLines += 1;
        this.waiting.push({ ...report, message: cut(report.message, maxLogLineChars) });
      }
    } else {
      const progress = report.phase === undefined ? report : { ...report, phase: cut(report.phase, maxPhaseChars) };
      const last = this.waiting.at(-1);
      if (last?.t === 'progress' && this.waiting.length >= mergeProgressAfter) this.waiting[this.waiting.length - 1] = merge(last, progress);
      else this.waiting.push(progress);
    }
    if (!this.draining) this.drained = this.drain();
  }

  /** Settles once every report pushed so far has been handled. */
  idle(): Promise<void> {
    return this.drained;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let next = this.waiting.shift(); next; next = this.waiting.shift()) await this.handle(next).catch(() => undefined);
    } finally {
      this.draining = false;
    }
  }
}

/** Two progress reports as one, as if both had been written in turn (a phase left out keeps the one before). */
function merge(earlier: Progress, later: Progress): Progress {
  const phase = later.phase ?? earlier.phase;
  const details = earlier.details || later.details ? { ...earlier.details, ...later.details } : undefined;
  return { t: 'progress', percent: later.percent, ...(phase !== undefined ? { phase } : {}), ...(details ? { details } : {}) };
}

/** The text, or its first `max` characters (never half a surrogate pair) and how much was cut. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text[max - 1]!) ? max - 1 : max;
  return `${text.slice(0, end)}… [${text.length - end} characters cut]`;
}
