// At most a few notifications to one subscriber in flight at once, across every worker. A subscriber that
// answers slowly holds a delivery for up to the request timeout; without a share per subscriber, a burst of
// its notifications would take every slot of every worker's notification queue, and the other subscribers'
// notifications would wait behind it for minutes.
//
// A sorted set per subscriber holds the notifications under way, each scored with the time its hold lapses
// (Redis's own clock, so workers' clocks do not matter): a worker that dies mid-request frees its hold then. A
// notification already held is refused too: a job that stalled and went to another worker waits for the first
// run's hold, so one release never frees two runs.
import type { Redis } from 'ioredis';

const acquireScript = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], nowMs + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

export class SubscriberSlots {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Notifications to one subscriber under way at once. */
    readonly perSubscriber: number,
    /** How long a hold lasts at most: longer than one delivery attempt can take. */
    private readonly holdMs: number,
  ) {}

  private key(subscriberId: string): string {
    return `${this.prefix}:notification-slots:${subscriberId}`;
  }

  /** Takes a slot of the subscriber's for this notification; false when its share is under way already. */
  async acquire(subscriberId: string, notificationId: string): Promise<boolean> {
    return (await this.redis.eval(acquireScript, 1, this.key(subscriberId), notificationId, this.perSubscriber, this.holdMs)) === 1;
  }

  async release(subscriberId: string, notificationId: string): Promise<void> {
    await this.redis.zrem(this.key(subscriberId), notificationId);
  }
}
