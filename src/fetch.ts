import type { AuthControl } from './auth-setup.js';
import { buildChain, type ChainOptions } from './chain.js';
import { validateClientOptions } from './client.js';
import { own } from './own.js';
import { type CallOptions, HttpRequest, type RequestBody } from './request.js';
import type { HttpResponse } from './response.js';

/** A fetch response is returned at its headers: the body is the caller's to stream. */
const STREAM_OPTIONS: CallOptions = Object.freeze(own({ streamBody: true }));

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** A real `Response` at the edge: the only place Sluice builds one. */
export function toWebResponse(response: HttpResponse): Response {
  const empty = NULL_BODY_STATUSES.has(response.status) || response.request.method === 'HEAD';
  // A body nobody can read is released now: its connection and its attempt's listeners go with it.
  if (empty) void response.discard();
  const body = empty ? null : response.body;
  const web = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  Object.defineProperty(web, 'url', { value: response.url });
  return web;
}

/**
 * The same chain behind a standard fetch signature, for SDKs that accept a custom fetch: a `Request` or
 * input + init in, a real `Response` out. Error statuses come back as responses, as fetch does; failures
 * that fetch would reject (network, timeout, abort) reject with the matching `SluiceError`.
 */
export function createFetch(
  given: ChainOptions = {},
): typeof globalThis.fetch & { close(): Promise<void>; auth: AuthControl | undefined } {
  const options = own(given);
  validateClientOptions(options);
  const chain = buildChain(options, { withoutErrors: true });
  async function sluiceFetch(input: string | URL | Request, given: RequestInit = {}): Promise<Response> {
    const init = own(given);
    const source = input instanceof Request ? input : undefined;
    const url = source ? source.url : String(input);
    const method = (init.method ?? source?.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers ?? source?.headers);
    let body: RequestBody = (init.body as RequestBody | undefined) ?? null;
    // A Request's body is a one-shot stream; in memory it can be re-sent after a retry or a 401.
    if (body === null && source?.body) body = new Uint8Array(await source.arrayBuffer());
    const request = new HttpRequest({
      method,
      url,
      headers,
      body,
      signal: init.signal ?? source?.signal ?? undefined,
      options: STREAM_OPTIONS,
      events: chain.events,
    });
    let response: HttpResponse;
    try {
      response = await chain.run(request);
    } catch (error) {
      throw chain.failure(request, error);
    }
    return toWebResponse(response);
  }
  return Object.assign(sluiceFetch as typeof globalThis.fetch, { close: () => chain.close(), auth: chain.auth });
}
