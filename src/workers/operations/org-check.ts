// ORG_CHECK: proves the stored credentials work and reports what the org is. The worker then marks the Org
// CONNECTED and records its Salesforce id and instance URL (task-effects.ts).
import type { TaskParams } from '../../domain/tasks/task-params.js';
import type { Operation } from './operation.js';
import { connect } from './salesforce/connect.js';
import { toOperationError } from './salesforce/errors.js';

interface OrganizationRecord {
  Id: string;
  Name: string;
  OrganizationType: string;
  IsSandbox: boolean;
  InstanceName: string;
}

interface Identity {
  user_id?: string;
  organization_id?: string;
  username?: string;
}

type Limit = { Max: number; Remaining: number };

const orgCheck: Operation<TaskParams<'ORG_CHECK'>> = {
  async run(ctx) {
    ctx.progress(10, 'authenticating');
    const { conn, identityUrl } = await connect(ctx);
    try {
      ctx.progress(40, 'reading identity');
      const identity = identityUrl ? await conn.request<Identity>({ method: 'GET', url: identityUrl }) : {};
      ctx.progress(60, 'reading the organization');
      const orgs = await conn.query<OrganizationRecord>('SELECT Id, Name, OrganizationType, IsSandbox, InstanceName FROM Organization');
      const org = orgs.records[0];
      ctx.progress(80, 'reading API limits');
      const limits = (await conn.limits()) as unknown as Record<string, Limit>;
      const summary = Object.fromEntries(
        ['DailyApiRequests', 'DailyAsyncApexExecutions', 'DailyBulkV2QueryJobs', 'DataStorageMB', 'FileStorageMB']
          .filter((name) => limits[name])
          .map((name) => [name, { max: limits[name]!.Max, remaining: limits[name]!.Remaining }]),
      );
      ctx.progress(100, 'done');
      return {
        organizationId: org?.Id ?? identity.organization_id ?? null,
        organizationName: org?.Name ?? null,
        organizationType: org?.OrganizationType ?? null,
        isSandbox: org?.IsSandbox ?? null,
        instanceName: org?.InstanceName ?? null,
        instanceUrl: conn.instanceUrl,
        username: identity.username ?? null,
        userId: identity.user_id ?? null,
        limits: summary,
      };
    } catch (error) {
      throw toOperationError(error, 'checking the org');
    }
  },
};

export default orgCheck;
