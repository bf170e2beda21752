// Reads a request body into memory, up to a limit: webhook payloads and /graphql bodies that do not declare their
// length are read this way, so a client cannot make a replica buffer more than the limit.
import type { IncomingMessage } from 'node:http';

export class BodyTooLarge extends Error {}

/** The whole body, or BodyTooLarge as soon as more than `limit` bytes arrive (the rest is drained unkept). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        req.resume(); // drain without keeping it
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
