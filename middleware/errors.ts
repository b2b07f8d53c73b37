import { after, builtIn, forward } from '../src/compose.js';
import { httpErrorFor, RateLimitError, type SluiceError } from '../src/errors.js';
import { toSluiceError } from '../src/normalize.js';
import { own } from '../src/own.js';
import { redactText } from '../src/redact.js';
import type { HttpRequest } from '../src/request.js';
import type { HttpResponse } from '../src/response.js';
import type { Middleware } from '../src/types.js';
import { isRateLimit, retryAfterMs } from './retry.js';

const MAX_ERROR_BODY = 64 * 1024;
const JSON_TYPE = /^application\/(?:[\w!#$%&*.^`~-]*\+)?json/i;

async function errorBody(response: HttpResponse): Promise<unknown> {
  if (response.request.method === 'HEAD') {
    await response.discard();
    return undefined;
  }
  let text: string | undefined;
  try {
    text = await response.textUpTo(MAX_ERROR_BODY);
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  if (JSON_TYPE.test(response.header('content-type') ?? '')) {
    try {
      return JSON.parse(text);
    } catch {
      // An error body that is not the JSON it claims is still worth showing, as text.
    }
  }
  return redactText(text.slice(0, 2048));
}

/** The typed error for a response of 400 or above; reads (and so releases) its body. */
export async function toHttpError(response: HttpResponse, request: HttpRequest): Promise<SluiceError> {
  const details = {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
    body: await errorBody(response),
    retryAfter: retryAfterMs(response),
    method: request.method,
    url: response.url,
    attempts: request.state.attempts,
  };
  // A 403 that is a rate limit (GitHub's): the caller should wait, not fix its permissions.
  if (isRateLimit(response) && response.status !== 429) return new RateLimitError({ ...details, retryable: true });
  return httpErrorFor(details);
}

export interface ErrorsOptions {
  /** Decides which responses are errors. @default status >= 400 */
  isError?: (response: HttpResponse) => boolean;
}

/**
 * Turns every failure into a `SluiceError`: responses of 400 and above become `HttpError` subclasses,
 * anything thrown below is normalized, and `attempts` is filled in from the call's ledger.
 */
export function errors(options: ErrorsOptions = {}): Middleware {
  const { isError = (response: HttpResponse) => response.status >= 400 } = own(options);
  // Not async: while the answer is awaited, a call holds a step on the answer, not a suspended function.
  return builtIn(function normalizeErrors(request, next) {
    return after(forward(next, request), next, checked, failed, request, isError);
  });
}

function checked(
  response: HttpResponse,
  request: HttpRequest,
  isError: (response: HttpResponse) => boolean,
): HttpResponse | Promise<HttpResponse> {
  return isError(response) ? toHttpError(response, request).then(reject) : response;
}

function failed(cause: unknown, request: HttpRequest): never {
  return reject(normalized(cause, request));
}

function normalized(cause: unknown, request: HttpRequest): SluiceError {
  const error = toSluiceError(cause, request, request.signal);
  if (error.attempts < request.state.attempts) error.attempts = request.state.attempts;
  return error;
}

function reject(error: unknown): never {
  throw error;
}
