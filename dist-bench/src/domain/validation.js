import { ValidationFailedError } from './errors.js';
/** Parses domain input with a zod schema, turning failures into VALIDATION_FAILED with field paths. */
export function parseInput(schema, input, pathPrefix = []) {
    const parsed = schema.safeParse(input);
    if (!parsed.success)
        throw ValidationFailedError.fromZod(parsed.error, pathPrefix);
    return parsed.data;
}
