// The request id of the operation being served, available to any code it calls (audit entries, logs)
// without threading it through every service signature.
import { AsyncLocalStorage } from 'node:async_hooks';
const storage = new AsyncLocalStorage();
export function runWithRequestId(requestId, fn) {
    return storage.run({ requestId }, fn);
}
export function currentRequestId() {
    return storage.getStore()?.requestId;
}
