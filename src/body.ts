import { Readable } from 'node:stream';
import { BodyNotReplayableError, SluiceError } from './errors.js';
import { type HttpRequest, isReplayable, type RequestBody } from './request.js';

/** What a transport can put on the wire, plus the content type the body implies. */
export interface WireBody {
  body: string | Uint8Array | FormData | Blob | Readable | ReadableStream<Uint8Array> | null;
  contentType: string | undefined;
  oneShot: boolean;
}

const NONE: WireBody = { body: null, contentType: undefined, oneShot: false };

function isAsyncIterable(value: object): value is AsyncIterable<Uint8Array> {
  return Symbol.asyncIterator in value;
}

/** Resolves a body factory and classifies the body; refuses to send a one-shot body twice. */
export function wireBody(request: HttpRequest): WireBody {
  let body: RequestBody = request.body;
  if (body === null) return NONE;
  if (typeof body === 'function') body = body();
  if (typeof body === 'string') return { body, contentType: undefined, oneShot: false };
  if (body instanceof Uint8Array) return { body, contentType: undefined, oneShot: false };
  if (body instanceof ArrayBuffer) return { body: new Uint8Array(body), contentType: undefined, oneShot: false };
  if (body instanceof URLSearchParams) {
    return { body: body.toString(), contentType: 'application/x-www-form-urlencoded;charset=UTF-8', oneShot: false };
  }
  if (body instanceof FormData) return { body, contentType: undefined, oneShot: false };
  if (body instanceof Blob) return { body, contentType: body.type || undefined, oneShot: false };
  // A stream: it can go on the wire once per call, unless it came from a factory.
  const oneShot = typeof request.body !== 'function';
  if (oneShot) {
    if (request.state.bodySent) throw new BodyNotReplayableError({ method: request.method, url: request.url });
    request.state.bodySent = true;
  }
  if (body instanceof ReadableStream || body instanceof Readable) return { body, contentType: undefined, oneShot };
  if (typeof body === 'object' && isAsyncIterable(body))
    return { body: Readable.from(body), contentType: undefined, oneShot };
  throw new SluiceError('unsupported request body type', {
    code: 'ERR_BODY_TYPE',
    method: request.method,
    url: request.url,
  });
}

/** True when the call's body can still be sent (again). */
export function canResend(request: HttpRequest): boolean {
  return isReplayable(request.body) || !request.state.bodySent;
}

/**
 * Reads a one-shot stream body into memory, up to `limit` bytes, so that it can be re-sent.
 * A larger body fails with `BodyNotReplayableError` before anything is sent.
 */
export async function bufferBody(body: RequestBody, limit: number): Promise<RequestBody> {
  if (isReplayable(body) || body === null) return body;
  const source = body as AsyncIterable<Uint8Array>;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of source) {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
    size += bytes.byteLength;
    if (size > limit) {
      throw new BodyNotReplayableError({
        code: 'BODY_TOO_LARGE_TO_BUFFER',
        cause: new RangeError(`over ${limit} bytes`),
      });
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}
