// What the worker accepts from a task child. The child runs third-party code (jsforce, node-vault and their
// dependencies) with an org's credentials, so the worker does not take its messages on trust: a message that is
// not one of ipc-protocol.ts's ChildMessages (`process.send(null)`, a code that is not a string) would
// otherwise throw inside an event listener, which ends the worker and every other task it runs. Worker side
// only: the child imports ipc-protocol.ts's types, never this (zod would add to every child's start-up).
import { z } from 'zod';
import type { ChildMessage } from './ipc-protocol.js';

const childMessage = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ready'), snapshot: z.enum(['preloaded', 'environment-changed']).optional() }),
  z.object({ t: z.literal('redeem'), token: z.string() }),
  z.object({ t: z.literal('grant') }),
  z.object({
    t: z.literal('progress'),
    percent: z.number().min(0).max(100),
    phase: z.string().optional(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  z.object({ t: z.literal('log'), level: z.enum(['info', 'warn', 'error']), message: z.string() }),
  z.object({ t: z.literal('done'), result: z.unknown() }),
  z.object({ t: z.literal('failed'), code: z.string().min(1), message: z.string(), retryable: z.boolean(), details: z.unknown().optional() }),
]) satisfies z.ZodType<ChildMessage>;

/** The `t` of every message a child may send. */
export const childMessageKinds: ReadonlySet<string> = new Set(childMessage.options.map((option) => option.shape.t.value));

/** The message, if it is one a child may send; null otherwise (the caller ignores it). */
export function parseChildMessage(value: unknown): ChildMessage | null {
  const parsed = childMessage.safeParse(value);
  return parsed.success ? (parsed.data as ChildMessage) : null;
}

/** The `t` of a message, without checking the rest: for listeners that only wait for one kind. */
export function messageKind(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null && typeof (value as { t?: unknown }).t === 'string' ? (value as { t: string }).t : undefined;
}
