// Bounds what a /graphql request can make a replica hold in memory. Caddy refuses large bodies at the edge in
// production, but `npm start` serves without it, and a replica should not trust that it sits behind Caddy.
//  - A body that declares a larger Content-Length is refused before a byte of it is read.
//  - A body that declares its length is handed to Yoga as it streams: Node's HTTP parser stops at that length.
//  - A JSON body sent without a length (chunked) is read here, up to the limit, and handed to Yoga read.
//  - A multipart upload streams through Yoga's form-data parser, which keeps at most `maxUploadBytes` of the
//    file and `maxRequestBytes` of each field, and takes one file (graphqlFetchApi); useBodyLimitErrors
//    answers what exceeds them.
import type { IncomingMessage } from 'node:http';
import { createFetch } from '@whatwg-node/fetch';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { BodyTooLarge, readBody } from './read-body.js';

export interface GraphqlBodyLimits {
  /** Largest JSON body, and largest multipart field (`operations`, `map`). */
  maxRequestBytes: number;
  /** Largest uploaded file (SWITCHYARD_MAX_UPLOAD_BYTES). */
  maxUploadBytes: number;
}

/** Why a request is refused before Yoga sees it. */
interface BodyRefusal {
  status: 400 | 413;
  code: 'BAD_REQUEST' | 'PAYLOAD_TOO_LARGE';
  message: string;
}

export function isMultipart(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data');
}

function tooLarge(limits: GraphqlBodyLimits, multipart: boolean): BodyRefusal {
  const message = multipart
    ? `Uploads are limited to ${limits.maxUploadBytes} bytes of file and ${limits.maxRequestBytes} bytes of each other field`
    : `Request bodies are limited to ${limits.maxRequestBytes} bytes`;
  return { status: 413, code: 'PAYLOAD_TOO_LARGE', message };
}

/** The largest body of a request: a JSON body, or an upload (its file, plus its other fields and the framing). */
export function maxBodyBytes(limits: GraphqlBodyLimits, multipart: boolean): number {
  return multipart ? limits.maxUploadBytes + limits.maxRequestBytes : limits.maxRequestBytes;
}

/** Checks, and where needed reads, a /graphql request's body before Yoga sees the request; null lets it through. */
export async function checkGraphqlBody(req: IncomingMessage, limits: GraphqlBodyLimits): Promise<BodyRefusal | null> {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return null;
  const multipart = isMultipart(req);
  // Multipart framing and the operations and map fields come on top of the file.
  const limit = maxBodyBytes(limits, multipart);
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    if (Number(declared) > limit) {
      req.resume(); // drain without keeping it, so the answer can be read
      return tooLarge(limits, multipart);
    }
    return null;
  }
  if (multipart) return null;
  try {
    const body = await readBody(req, limits.maxRequestBytes);
    if (body.length === 0) return { status: 400, code: 'BAD_REQUEST', message: 'The request body is empty' };
    // Yoga's Node adapter takes a body a framework has already read from `req.body` (as Express's body parsers
    // leave it), instead of reading the request stream again.
    (req as IncomingMessage & { body?: Buffer }).body = body;
    return null;
  } catch (error) {
    if (error instanceof BodyTooLarge) return tooLarge(limits, false);
    throw error;
  }
}

/** The Fetch API Yoga parses requests with: its multipart parser keeps to the limits. */
export function graphqlFetchApi(limits: GraphqlBodyLimits): ReturnType<typeof createFetch> {
  return createFetch({ formDataLimits: { fileSize: limits.maxUploadBytes, files: 1, fieldSize: limits.maxRequestBytes } });
}

/**
 * The form-data parser's failures at the limits (graphqlFetchApi), and Yoga's at its body cap, as 413
 * PAYLOAD_TOO_LARGE with a plain message,
 * like every other body refused for its size. Yoga would answer a file over the limit with 413
 * REQUEST_ENTITY_TOO_LARGE, and a second file or a long field with 400 BAD_REQUEST ("POST body sent invalid
 * multipart data: Files limit exceeded: 1").
 */
export function useBodyLimitErrors(limits: GraphqlBodyLimits): Plugin {
  const refusal = (message: string): string | null => {
    if (message.includes('File size limit exceeded')) return `Uploaded files are limited to ${limits.maxUploadBytes} bytes`;
    // Yoga's own cap on a whole body (maxRequestBodySize, set to the largest upload: create-app.ts).
    if (message.includes('Request body too large')) return tooLarge(limits, true).message;
    if (message.includes('Files limit exceeded')) return 'One file can be uploaded per request';
    if (message.includes('Field value size exceeded')) return `Multipart fields other than the file are limited to ${limits.maxRequestBytes} bytes`;
    return null;
  };
  return {
    onRequestParse: ({ requestParser, setRequestParser }) => {
      if (!requestParser) return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (error) {
          const message = error instanceof Error ? refusal(error.message) : null;
          if (message) throw createGraphQLError(message, { extensions: { code: 'PAYLOAD_TOO_LARGE', http: { status: 413 } } });
          throw error;
        }
      });
    },
  };
}
