// One metadata-changing task (DEPLOY, QUICK_DEPLOY) per org at a time, across all workers. A Redis lease
// lock: renewed while the child runs, released when it ends, and expiring by itself if the worker dies.
// Waiters queue in a sorted set by submission time, so the lock passes in order; a waiter that stops polling
// (cancelled, worker gone) drops out when its liveness key expires.
//
// The lock is held by a run, `<task id>/<worker id>`, not by a task: a worker presumed dead (cut off from Redis
// for longer than its job lock) whose task another worker has taken over may come back, and its late renewal
// or release must not touch the lock of the run that replaced it. A new run of the same task takes the lock of
// the earlier one at once: the executor starts one only once that run has ended or been found lost.
import type { Redis } from 'ioredis';

/** One run of a task: the task, and the worker running it (a worker runs a task at most once at a time). */
export interface LockRun {
  taskId: string;
  workerId: string;
}

const holderOf = (run: LockRun) => `${run.taskId}/${run.workerId}`;

// The lock's value without the worker: the task, which is what a waiting task's phase names. A bare task id is
// also a holder (a lock taken before holders named runs).
const taskOfHolder = `local function taskOf(holder) return (string.match(holder, '^[^/]*')) end`;

const acquireScript = `
${taskOfHolder}
local lock, waiters = KEYS[1], KEYS[2]
local id, score, lease, alivePrefix, aliveTtl, run = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local holder = redis.call('GET', lock)
if holder and taskOf(holder) == id then
  redis.call('SET', lock, run, 'PX', lease)
  redis.call('ZREM', waiters, id)
  redis.call('DEL', alivePrefix .. id)
  return {1, 0, id}
end
redis.call('ZADD', waiters, 'NX', score, id)
redis.call('SET', alivePrefix .. id, '1', 'PX', aliveTtl)
local position = 0
for _, other in ipairs(redis.call('ZRANGE', waiters, 0, -1)) do
  if other == id then break end
  if redis.call('EXISTS', alivePrefix .. other) == 1 then
    position = position + 1
  else
    redis.call('ZREM', waiters, other)
  end
end
if not holder and position == 0 then
  redis.call('SET', lock, run, 'PX', lease)
  redis.call('ZREM', waiters, id)
  redis.call('DEL', alivePrefix .. id)
  return {1, 0, id}
end
return {0, position + 1, holder and taskOf(holder) or ''}
`;

// A holder takes back a lock that is gone (Redis restarted without persistence while its deployment ran): the
// deployment still runs, and a waiting one must not start beside it. A lock another run holds stays theirs.
const renewScript = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export type LockAttempt = { acquired: true } | { acquired: false; position: number; holder: string };

export class OrgLock {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly leaseMs: number,
    private readonly pollMs: number,
  ) {}

  private keys(orgId: string): [string, string] {
    return [`${this.prefix}:orglock:${orgId}`, `${this.prefix}:orglock:${orgId}:waiters`];
  }

  /** Takes the lock for `run`, or queues its task by `queuedAt`; `holder` is the task holding it. */
  async tryAcquire(orgId: string, run: LockRun, queuedAt: Date): Promise<LockAttempt> {
    const [lock, waiters] = this.keys(orgId);
    const [acquired, position, holder] = (await this.redis.eval(
      acquireScript,
      2,
      lock,
      waiters,
      run.taskId,
      queuedAt.getTime(),
      this.leaseMs,
      `${this.prefix}:orglock:alive:`,
      // Generous: a waiter polls every pollMs, but a loaded queue may take seconds to hand its job back.
      this.pollMs * 5 + 5000,
      holderOf(run),
    )) as [number, number, string];
    return acquired === 1 ? { acquired: true } : { acquired: false, position, holder };
  }

  /** Extends the lease, or takes back a lock that is gone; false when another run holds it. */
  async renew(orgId: string, run: LockRun): Promise<boolean> {
    return (await this.redis.eval(renewScript, 1, this.keys(orgId)[0], holderOf(run), this.leaseMs)) === 1;
  }

  /** Frees the lock if `run` still holds it. */
  async release(orgId: string, run: LockRun): Promise<void> {
    await this.redis.eval(releaseScript, 1, this.keys(orgId)[0], holderOf(run));
  }
}
