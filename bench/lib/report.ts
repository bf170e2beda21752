// Printing helpers shared by the benchmarks in bench/: headings, label/value lines, tables, goal verdicts.
import { loadavg } from 'node:os';

export const ms = (value: number, digits = 1) => (Number.isFinite(value) ? `${value.toFixed(digits)} ms` : 'n/a');

export function heading(text: string): void {
  console.log(`\n== ${text}`);
}

/** A `line(label, value)` printer whose labels are padded to `width` characters. */
export function labelledLine(width: number): (label: string, value: string) => void {
  return (label, value) => console.log(`  ${label.padEnd(width)} ${value}`);
}

/** A table-row printer: each cell padded to its column's width, columns separated by " | ". */
export function tableRow(widths: number[]): (cells: string[]) => void {
  return (cells) => console.log(`  ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')}`);
}

/** Prints the header row, then the dashed rule under it. */
export function tableHeader(widths: number[], cells: string[]): (cells: string[]) => void {
  const row = tableRow(widths);
  row(cells);
  row(widths.map((w) => '-'.repeat(w)));
  return row;
}

export const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');

/** The 1/5/15-minute load averages, two decimals each. */
export const loadAverages = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');

/** The closing lines of every bench: load average at the end and the wall time since `began`. */
export function printEnd(line: (label: string, value: string) => void, began: number): void {
  line('load average at end (1/5/15 min)', loadAverages());
  line('wall time', `${((performance.now() - began) / 1000).toFixed(1)} s`);
}
