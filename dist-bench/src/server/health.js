const probeTimeoutMs = 1500;
function withTimeout(promise, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${probeTimeoutMs} ms`)), probeTimeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
async function probe(run, what) {
    try {
        await withTimeout(run(), what);
        return { ok: true };
    }
    catch (error) {
        return { ok: false, error: error.message };
    }
}
export async function checkReadiness(prisma, redis) {
    const [postgres, redisCheck] = await Promise.all([
        probe(() => prisma.$queryRaw `SELECT 1`, 'PostgreSQL'),
        probe(() => redis.ping(), 'Redis'),
    ]);
    return { ready: postgres.ok && redisCheck.ok, checks: { postgres, redis: redisCheck } };
}
