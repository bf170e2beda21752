// The parameters each task type accepts. Validated on submit, stored validated (Task.input), and read again
// by the operation that runs the task. Unknown keys are rejected so typos do not silently do nothing.
import { z } from 'zod';
import type { TaskQueue, TaskType } from '../../generated/prisma/enums.js';
import { ValidationFailedError } from '../errors.js';

const metadataName = z.string().trim().min(1).max(255);
/** Salesforce record ids are 15 or 18 case-sensitive alphanumerics. */
const salesforceId = z.string().regex(/^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/, 'must be a 15 or 18 character Salesforce id');
const apiVersion = z.string().regex(/^\d{2,3}\.0$/, 'must look like 62.0').optional();
/** How often Salesforce is asked about a running deployment or retrieval. */
const pollIntervalMs = z.number().int().min(100).max(60_000).default(2000);

const orgCheckParams = z.strictObject({ apiVersion });

const retrieveParams = z
  .strictObject({
    members: z
      .array(z.strictObject({ type: metadataName, members: z.array(metadataName).min(1).max(10_000) }))
      .min(1)
      .max(500)
      .optional(),
    packageXml: z.string().min(1).max(1_000_000).optional(),
    apiVersion,
    pollIntervalMs,
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
    /** The zip has package.xml at its root (true) or holds several packages in folders (false). */
    singlePackage: z.boolean().default(true),
    apiVersion,
    pollIntervalMs,
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
    /** The VALIDATE task's id (global id or UUID); its deploy id is filled in on submit. */
    validationTaskId: z.string().min(1).max(200).optional(),
    deployId: salesforceId.optional(),
    apiVersion,
    pollIntervalMs,
  })
  .refine((p) => (p.validationTaskId === undefined) !== (p.deployId === undefined), {
    message: 'give exactly one of validationTaskId or deployId',
    path: ['validationTaskId'],
  });

/** Exercises the execution pipeline without Salesforce: progress, logs, failures and credential access. */
const diagnosticParams = z.strictObject({
  steps: z.number().int().min(1).max(1000).default(3),
  stepMs: z.number().int().min(0).max(60_000).default(10),
  /** Fail with this code on the first `failTimes` attempts (all attempts when failTimes is omitted). */
  failWith: z
    .strictObject({
      code: z.string().regex(/^[A-Z][A-Z0-9_]{1,63}$/, 'must be an UPPER_SNAKE code'),
      message: z.string().max(1000).default('diagnostic failure'),
      retryable: z.boolean().default(true),
      failTimes: z.number().int().min(1).max(100).optional(),
    })
    .optional(),
  /** Redeem the org's credentials and report a fingerprint of them (never the values). */
  readCredentials: z.boolean().default(false),
  /** Keep running after an abort request, to exercise SIGTERM/SIGKILL escalation. */
  ignoreAbort: z.boolean().default(false),
});

export const taskParamSchemas = {
  ORG_CHECK: orgCheckParams,
  RETRIEVE: retrieveParams,
  VALIDATE: deployParams,
  DEPLOY: deployParams,
  QUICK_DEPLOY: quickDeployParams,
  DIAGNOSTIC: diagnosticParams,
} satisfies Record<TaskType, z.ZodType>;

export type TaskParams<T extends TaskType> = z.output<(typeof taskParamSchemas)[T]>;

/** Where a task goes when the caller does not say: org checks are quick and gate other work. */
export const defaultQueueFor: Record<TaskType, TaskQueue> = {
  ORG_CHECK: 'CRITICAL',
  QUICK_DEPLOY: 'NORMAL',
  DEPLOY: 'NORMAL',
  VALIDATE: 'NORMAL',
  RETRIEVE: 'BATCH',
  DIAGNOSTIC: 'NORMAL',
};

/** How long a run may take unless the task says otherwise. Deployments with tests can run for hours. */
export const defaultTimeoutMsFor: Record<TaskType, number> = {
  ORG_CHECK: 2 * 60_000,
  RETRIEVE: 30 * 60_000,
  VALIDATE: 3 * 60 * 60_000,
  DEPLOY: 3 * 60 * 60_000,
  QUICK_DEPLOY: 30 * 60_000,
  DIAGNOSTIC: 5 * 60_000,
};

/** Types that change an org's metadata: at most one of them runs per org at a time. */
export const orgExclusiveTypes: ReadonlySet<TaskType> = new Set<TaskType>(['DEPLOY', 'QUICK_DEPLOY']);

/**
 * Refuses a deployment that Salesforce would refuse for its org: NoTestRun is allowed only in development orgs
 * (sandboxes, Developer Edition, scratch orgs), so on a production org it would wait its turn and the org lock
 * only to fail. `paramsPath` is where the params are in the caller's input.
 */
export function checkTestLevelForOrg(type: TaskType, params: unknown, orgKind: string, paramsPath: string[]): void {
  if ((type === 'DEPLOY' || type === 'VALIDATE') && (params as { testLevel?: string }).testLevel === 'NoTestRun' && orgKind === 'PRODUCTION') {
    throw ValidationFailedError.single([...paramsPath, 'testLevel'], 'NoTestRun is not allowed on a production org: use RunLocalTests, RunSpecifiedTests or RunAllTestsInOrg');
  }
}
