const byName = { critical: 'CRITICAL', normal: 'NORMAL', batch: 'BATCH' };
export class WorkerConfigError extends Error {
}
export function parseQueues(spec) {
    const names = spec.split(',').map((part) => part.trim().toLowerCase()).filter(Boolean);
    if (names.length === 0)
        throw new WorkerConfigError('--queues needs at least one of critical, normal, batch');
    return [...new Set(names)].map((name) => {
        const queue = byName[name];
        if (!queue)
            throw new WorkerConfigError(`Unknown queue "${name}" (expected critical, normal or batch)`);
        return queue;
    });
}
export function parseConcurrency(spec) {
    const result = {};
    for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
        const match = /^([a-z]+)=(\d+)$/i.exec(part);
        const queue = match ? byName[match[1].toLowerCase()] : undefined;
        const count = match ? Number(match[2]) : NaN;
        if (!queue || !(count >= 1 && count <= 64)) {
            throw new WorkerConfigError(`Bad concurrency "${part}" (expected queue=N with N from 1 to 64, e.g. critical=2)`);
        }
        result[queue] = count;
    }
    return result;
}
