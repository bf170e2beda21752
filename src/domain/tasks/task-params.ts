// The parameters each task type accepts. Validated on submit, stored validated (Task.input), and read again
// by the operation that runs the task. Unknown keys are rejected so typos do not silently do nothing.
import { z } from 'zod';
import type { TaskQueue, TaskType } from '../../generated/prisma/enums.js';

const metadataName = z.string().trim().min(1).max(255);
/** Salesforce record ids are 15 or 18 case-sensitive alphanumerics. */
const salesforceId = z.string().regex(/^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/, 'must be a 15 or 18 character Salesforce id');
const apiVersion = z.string().regex(/^\d{2,3}\.0$/, 'must look like 62.0').optional();

const orgCheckParams = z.strictObject({});

const retrieveParams = z
  .strictObject({
    members: z
      .array(z.strictObject({ type: metadataName, members: z.array(metadataName).min(1).max(10_000) }))
      .min(1)
      .max(500)
      .optional(),
    packageXml: z.string().min(1).max(1_000_000).optional(),
    apiVersion,
  })
  .refine((p) => (p.members === undefined) !== (p.packageXml === undefined), {
    message: 'give exactly one of members or packageXml',
    path: ['members'],
  });

const testLevels = ['NoTestRun', 'RunSpecifiedTests', 'RunLocalTests', 'RunAllTestsInOrg'] as const;

const deployParams = z
  .strictObject({
    artifactId: z.string().min(1).max(200),
    testLevel: z.enum(testLevels).default('RunLocalTests'),
    runTests: z.array(z.string().trim().min(1).max(255)).max(1000).default([]),
    rollbackOnError: z.boolean().default(true),
    ignoreWarnings: z.boolean().default(false),
    apiVersion,
  })
  .refine((p) => p.testLevel !== 'RunSpecifiedTests' || p.runTests.length > 0, {
    message: 'RunSpecifiedTests needs at least one test class in runTests',
    path: ['runTests'],
  })
  .refine((p) => p.testLevel === 'RunSpecifiedTests' || p.runTests.length === 0, {
    message: 'runTests is only used with testLevel RunSpecifiedTests',
    path: ['runTests'],
  });

const quickDeployParams = z
  .strictObject({
    validationTaskId: z.uuid().optional(),
    deployId: salesforceId.optional(),
  })
  .refine((p) => (p.validationTaskId === undefined) !== (p.deployId === undefined), {
    message: 'give exactly one of validationTaskId or deployId',
    path: ['validationTaskId'],
  });

export const taskParamSchemas = {
  ORG_CHECK: orgCheckParams,
  RETRIEVE: retrieveParams,
  VALIDATE: deployParams,
  DEPLOY: deployParams,
  QUICK_DEPLOY: quickDeployParams,
} satisfies Record<TaskType, z.ZodType>;

export type TaskParams<T extends TaskType> = z.output<(typeof taskParamSchemas)[T]>;

/** Where a task goes when the caller does not say: org checks are quick and gate other work. */
export const defaultQueueFor: Record<TaskType, TaskQueue> = {
  ORG_CHECK: 'CRITICAL',
  QUICK_DEPLOY: 'NORMAL',
  DEPLOY: 'NORMAL',
  VALIDATE: 'NORMAL',
  RETRIEVE: 'BATCH',
};
