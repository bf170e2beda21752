// Typed error results. Every expected failure is an object implementing `Error` with a stable `code`;
// mutations return a union of their success type and the errors they can produce.
import { builder } from '../builder.js';
import { ConflictError, errorCodes, InvalidCredentialsError, InvalidStateError, NotFoundError, UnavailableError, ValidationFailedError, } from '../domain/errors.js';
import { TaskStatusEnum } from './enums.js';
export const ErrorCodeEnum = builder.enumType('ErrorCode', {
    description: 'Stable codes of expected failures; safe to branch on.',
    values: errorCodes,
});
export const ErrorInterface = builder.interfaceRef('Error').implement({
    description: 'An expected failure of a mutation.',
    fields: (t) => ({
        code: t.field({ type: ErrorCodeEnum, resolve: (error) => error.code }),
        message: t.exposeString('message'),
    }),
});
const FieldErrorRef = builder.objectRef('FieldError').implement({
    description: 'One invalid input value, located by its path from the field arguments.',
    fields: (t) => ({
        path: t.exposeStringList('path'),
        message: t.exposeString('message'),
    }),
});
builder.objectType(ValidationFailedError, {
    name: 'ValidationError',
    interfaces: [ErrorInterface],
    fields: (t) => ({
        fieldErrors: t.field({ type: [FieldErrorRef], resolve: (error) => error.issues }),
    }),
});
builder.objectType(NotFoundError, { name: 'NotFoundError', interfaces: [ErrorInterface], fields: () => ({}) });
builder.objectType(ConflictError, { name: 'ConflictError', interfaces: [ErrorInterface], fields: () => ({}) });
builder.objectType(UnavailableError, { name: 'UnavailableError', interfaces: [ErrorInterface], fields: () => ({}) });
builder.objectType(InvalidCredentialsError, {
    name: 'InvalidCredentialsError',
    description: 'The credentials were malformed. The message names the problem, never the value.',
    interfaces: [ErrorInterface],
    fields: (t) => ({ path: t.exposeStringList('path') }),
});
builder.objectType(InvalidStateError, {
    name: 'InvalidStateError',
    description: 'The task is not in a state that allows this.',
    interfaces: [ErrorInterface],
    fields: (t) => ({
        currentStatus: t.field({ type: TaskStatusEnum, resolve: (error) => error.currentStatus }),
    }),
});
