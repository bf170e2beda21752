// A write that refers to an org (a task, a schedule, a webhook rule) can lose it to a removeOrg that runs at the
// same moment: the removal holds the org's row until it commits (org-service.ts), the write's foreign key waits
// for it, and then there is no org to refer to. That is the caller's ORG_NOT_FOUND, not an internal error.
import { violatesConstraint } from '../../db/prisma.js';
import { NotFoundError } from '../errors.js';

/** `write`, with a violation of `foreignKey` (the written row's org) answered as ORG_NOT_FOUND. */
export async function unlessOrgRemoved<T>(write: Promise<T>, foreignKey: string, what: string): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (violatesConstraint(error, foreignKey)) {
      throw new NotFoundError('ORG_NOT_FOUND', `The org was removed while ${what} was being created: register it again, or use another org`);
    }
    throw error;
  }
}
