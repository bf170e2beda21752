export function taskEventChannel(prefix, taskId) {
    return `${prefix}:taskEvent:${taskId}`;
}
export function allTaskEventsChannel(prefix) {
    return `${prefix}:taskEvents`;
}
/** Requests to workers, e.g. to abort a running task. */
export function controlChannel(prefix) {
    return `${prefix}:control`;
}
export class RedisTaskEventPublisher {
    redis;
    prefix;
    constructor(redis, prefix) {
        this.redis = redis;
        this.prefix = prefix;
    }
    async publish(events) {
        if (events.length === 0)
            return;
        const pipeline = this.redis.pipeline();
        for (const event of events) {
            const json = JSON.stringify(event);
            pipeline.publish(taskEventChannel(this.prefix, event.taskId), json);
            pipeline.publish(allTaskEventsChannel(this.prefix), json);
        }
        await pipeline.exec();
    }
    async control(message) {
        await this.redis.publish(controlChannel(this.prefix), JSON.stringify(message));
    }
}
