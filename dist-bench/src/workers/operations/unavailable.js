// Salesforce operations (org check, retrieve, validate, deploy, quick deploy) are not in this release yet;
// tasks of those types fail with a clear, non-retryable code instead of pretending to run.
import { OperationError } from './operation.js';
const unavailable = {
    async run() {
        throw new OperationError('OPERATION_UNAVAILABLE', 'This task type is not implemented by this Switchyard version yet', false);
    },
};
export default unavailable;
