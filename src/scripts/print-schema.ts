// Writes schema.graphql from the code, for tools and reviewers. A test fails when the two drift apart.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printSchema } from 'graphql';
import { getSchema } from '../schema/index.js';
import { invokedDirectly } from './invoked-directly.js';

export const schemaFile = fileURLToPath(new URL('../../schema.graphql', import.meta.url));

export function printedSchema(): string {
  return `${printSchema(getSchema())}\n`;
}

if (invokedDirectly(import.meta.url)) {
  writeFileSync(schemaFile, printedSchema());
  process.stdout.write(`wrote ${schemaFile}\n`);
}
