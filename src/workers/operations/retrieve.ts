// RETRIEVE: a Metadata API retrieve of a member list or a package.xml, polled to the end; the zip goes into
// the content-addressed artifact store and becomes an Artifact (task-effects.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { storeArtifactBytes } from '../../artifacts/artifact-files.js';
import type { TaskParams } from '../../domain/tasks/task-params.js';
import { OperationError, type Operation } from './operation.js';
import { connect, defaultApiVersion } from './salesforce/connect.js';
import { toOperationError } from './salesforce/errors.js';
import { pollStatus } from './salesforce/poll-status.js';

type Params = TaskParams<'RETRIEVE'>;

/** A character reference's character: only those XML allows (no NUL, no surrogates, nothing past U+10FFFF). */
function xmlChar(code: number): string {
  const allowed = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
  if (!allowed) throw new OperationError('INVALID_PACKAGE', `package.xml refers to a character XML does not allow (&#x${code.toString(16)};)`, false);
  return String.fromCodePoint(code);
}

/** The text of an element: XML entities and character references decoded, CDATA sections as they are. */
function xmlText(raw: string): string {
  return raw
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>|&(?:#x([0-9a-f]+)|#(\d+)|(amp|lt|gt|quot|apos));/gi, (_, cdata: string | undefined, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
      if (cdata !== undefined) return cdata;
      if (hex !== undefined || dec !== undefined) return xmlChar(parseInt(hex ?? dec!, hex !== undefined ? 16 : 10));
      return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[name!.toLowerCase() as 'amp']!;
    })
    .trim();
}

/**
 * <types><members>A</members><name>ApexClass</name></types>… from a package.xml, as Salesforce reads it:
 * commented-out parts do not count, and `R&amp;D` is the member `R&D`.
 */
export function typesFromPackageXml(xml: string): Array<{ name: string; members: string[] }> {
  const uncommented = xml.replace(/<!--[\s\S]*?-->/g, '');
  const element = /<(name|members)>((?:<!\[CDATA\[[\s\S]*?\]\]>|[^<])*)<\/\1>/g;
  const types = [...uncommented.matchAll(/<types>([\s\S]*?)<\/types>/g)].map((match) => {
    const type = { name: '', members: [] as string[] };
    for (const [, tag, raw] of match[1]!.matchAll(element)) {
      const text = xmlText(raw!);
      if (tag === 'name') type.name = text;
      else if (text) type.members.push(text);
    }
    return type;
  });
  if (types.length === 0 || types.some((t) => !t.name || t.members.length === 0)) {
    throw new OperationError('INVALID_PACKAGE', 'package.xml has no <types> with a <name> and <members>', false);
  }
  return types;
}

const retrieve: Operation<Params> = {
  async run(ctx) {
    const { params } = ctx;
    const version = params.apiVersion ?? defaultApiVersion;
    const types = params.packageXml ? typesFromPackageXml(params.packageXml) : params.members!.map((m) => ({ name: m.type, members: m.members }));
    ctx.progress(2, 'authenticating');
    const { conn } = await connect(ctx, ['metadata']);
    try {
      const started = (await conn.metadata.retrieve({ apiVersion: version, unpackaged: { types, version }, singlePackage: true } as never)) as unknown as { id: string };
      ctx.log(`Retrieve ${started.id} started`);
      for (let poll = 1; ; poll += 1) {
        if (ctx.signal.aborted) throw new OperationError('CANCELLED', `Retrieve ${started.id} was cancelled`, false);
        const result = (await pollStatus(() => conn.metadata.checkRetrieveStatus(started.id), ctx, `checking retrieve ${started.id}`, params.pollIntervalMs)) as unknown as {
          status: string;
          done: unknown;
          success: unknown;
          zipFile?: string;
          errorMessage?: string;
          fileProperties?: unknown;
          messages?: unknown;
        };
        const done = result.done === true || result.done === 'true';
        // The remaining time is unknown: approach 90 % while Salesforce works.
        ctx.progress(done ? 95 : Math.round(90 * (1 - 1 / (poll + 1))), result.status);
        if (done) {
          if (result.status !== 'Succeeded' || !result.zipFile) {
            throw new OperationError('RETRIEVE_FAILED', `Retrieve ${started.id} ${result.status}: ${result.errorMessage ?? 'no zip returned'}`, false);
          }
          const stored = await storeArtifactBytes(ctx.files.artifactDir, Buffer.from(result.zipFile, 'base64'));
          const files = Array.isArray(result.fileProperties) ? result.fileProperties.length : result.fileProperties ? 1 : 0;
          ctx.progress(100, 'stored');
          return { retrieveId: started.id, status: result.status, fileCount: files, artifact: { ...stored, fileName: `retrieve-${ctx.taskId}.zip` } };
        }
        await sleep(params.pollIntervalMs, undefined, { signal: ctx.signal }).catch(() => undefined);
      }
    } catch (error) {
      throw toOperationError(error, 'retrieving metadata');
    }
  },
};

export default retrieve;
