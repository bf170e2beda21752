// In development Switchyard should start with no setup at all, so when SWITCHYARD_SECRET_KEY is unset it
// keeps a generated key in a git-ignored file. Production refuses to start without the variable (env.ts):
// losing that file would make every stored credential unreadable.
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { decodeSecretKey, type Env } from '../env.js';

export async function resolveSecretKey(env: Env, logger: Logger): Promise<Buffer> {
  if (env.SWITCHYARD_SECRET_KEY) return decodeSecretKey(env.SWITCHYARD_SECRET_KEY)!;
  const file = path.resolve(env.SWITCHYARD_KEY_FILE);
  try {
    const key = decodeSecretKey(await readFile(file, 'utf8'));
    if (!key) throw new Error(`${file} does not hold a 32-byte key (64 hex characters)`);
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(32);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // Written whole under a name of its own, then linked into place: link() fails if another process saved its
  // key first (then read theirs), and nobody can read a file that is created but not yet written.
  const content = `${key.toString('hex')}\n`;
  // The draft's name is random, not derived from the key: file names show in listings and in errors.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(draft, content, { mode: 0o600, flag: 'wx' });
  try {
    await link(draft, file).catch(async (error: NodeJS.ErrnoException) => {
      // A file system without hard links (some shares and bind mounts): create the file in place, as before.
      if (error.code !== 'EPERM' && error.code !== 'ENOTSUP' && error.code !== 'EOPNOTSUPP') throw error;
      await writeFile(file, content, { mode: 0o600, flag: 'wx' });
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return resolveSecretKey(env, logger);
    throw error;
  } finally {
    await unlink(draft);
  }
  logger.warn(
    { keyFile: file },
    'SWITCHYARD_SECRET_KEY is not set: generated a development key and saved it in the key file. ' +
      'Set SWITCHYARD_SECRET_KEY in production; without this key stored org credentials cannot be read.',
  );
  return key;
}
