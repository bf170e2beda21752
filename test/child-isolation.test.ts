// The per-task child process must stay small and trustworthy: nothing it can import (statically or through
// the lazy operation registry) may reach Prisma, Redis, BullMQ or the database driver.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { childEntryPoint, childEnvironment } from '../src/workers/child-launcher.js';

const srcRoot = fileURLToPath(new URL('../src/', import.meta.url));
const importPattern = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(importPattern)) {
      const line = source.slice(source.lastIndexOf('\n', match.index) + 1, match.index + match[0].length);
      if (/^\s*(import|export)\s+type\s/.test(line)) continue; // erased at compile time
      const specifier = (match[1] ?? match[2])!;
      if (specifier.startsWith('.')) visit(path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
    }
  };
  visit(entry);
  return { files, packages };
}

// Both ways a child starts: its entry point, and the child snapshot's script (bundled with all it imports).
describe.each(['workers/child-main.ts', 'workers/child-snapshot/snapshot-main.ts'])('the per-task child process (%s)', (entry) => {
  const { files, packages } = importGraph(path.join(srcRoot, entry));

  it('can reach the operations and the Vault unwrap, and nothing of the server', () => {
    const relative = [...files].map((file) => path.relative(srcRoot, file));
    expect(relative).toContain('workers/operations/diagnostic.ts');
    expect(relative).toContain('secrets/vault-unwrap.ts');
    for (const file of relative) {
      expect(file).not.toMatch(/^(db|generated|server|schema|resolvers|queues|events)\//);
      expect(file).not.toMatch(/^secrets\/(builtin-store|vault-store|create-secret-store)\.ts$/);
    }
  });

  it('imports neither Prisma, Redis, BullMQ nor the Postgres driver', () => {
    for (const forbidden of ['@prisma/client', '@prisma/adapter-pg', 'ioredis', 'bullmq', 'pg', 'graphql', 'graphql-yoga']) {
      expect(packages.has(forbidden), forbidden).toBe(false);
    }
  });
});

describe('an error nothing in the child caught', () => {
  it('is told by its class only, never its message or stack, and ends the child', async () => {
    // Forked as the launcher forks it, with stderr captured. A `run` without a request fails inside the child's
    // async handler, outside any try: an unhandled rejection, whose message would name what it tried to read.
    const child = fork(childEntryPoint(), [], { env: childEnvironment(), execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.send({ t: 'run', request: null });
    expect(await exited).toBe(71);
    expect(stderr.trim()).toBe(`switchyard task child ${child.pid}: unexpected TypeError, exiting`);
  });
});
