const acquireScript = `
local lock, waiters = KEYS[1], KEYS[2]
local id, score, lease, alivePrefix, aliveTtl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local holder = redis.call('GET', lock)
if holder == id then
  redis.call('PEXPIRE', lock, lease)
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
  redis.call('SET', lock, id, 'PX', lease)
  redis.call('ZREM', waiters, id)
  redis.call('DEL', alivePrefix .. id)
  return {1, 0, id}
end
return {0, position + 1, holder or ''}
`;
const renewScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
export class OrgLock {
    redis;
    prefix;
    leaseMs;
    pollMs;
    constructor(redis, prefix, leaseMs, pollMs) {
        this.redis = redis;
        this.prefix = prefix;
        this.leaseMs = leaseMs;
        this.pollMs = pollMs;
    }
    keys(orgId) {
        return [`${this.prefix}:orglock:${orgId}`, `${this.prefix}:orglock:${orgId}:waiters`];
    }
    async tryAcquire(orgId, taskId, queuedAt) {
        const [lock, waiters] = this.keys(orgId);
        const [acquired, position, holder] = (await this.redis.eval(acquireScript, 2, lock, waiters, taskId, queuedAt.getTime(), this.leaseMs, `${this.prefix}:orglock:alive:`, this.pollMs * 3));
        return acquired === 1 ? { acquired: true } : { acquired: false, position, holder };
    }
    async renew(orgId, taskId) {
        return (await this.redis.eval(renewScript, 1, this.keys(orgId)[0], taskId, this.leaseMs)) === 1;
    }
    async release(orgId, taskId) {
        await this.redis.eval(releaseScript, 1, this.keys(orgId)[0], taskId);
    }
}
