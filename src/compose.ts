import { toSluiceError } from './normalize.js';
import { redactUrl } from './redact.js';
import type { HttpRequest } from './request.js';
import type { HttpResponse } from './response.js';
import type { EventSink, Middleware, Next } from './types.js';

/** Outermost first: array order is wrapping order. Unlike koa-compose, `next` may be called more than once. */
export function compose(middleware: readonly Middleware[], terminal: Next): Next {
  for (const fn of middleware) {
    if (typeof fn !== 'function') throw new TypeError('compose: every middleware must be a function');
  }
  return middleware.reduceRight<Next>((next, fn) => (request) => fn(request, next), terminal);
}

/**
 * `next(request)` with a synchronous throw turned into a rejection, as an async function would return
 * it: for middleware that hand on the promise below (`.then`) instead of awaiting it.
 */
export function forward(next: Next, request: HttpRequest): Promise<HttpResponse> {
  try {
    return next(request);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Wraps the transport so that every wire attempt is counted on the call's state and reported as an
 * `attempt` event. The work is skipped when nobody listens.
 */
export function instrument(send: Next): Next {
  // Not async when nobody listens: the call holds the transport's promise, not a function of its own.
  return function attempt(request: HttpRequest): Promise<HttpResponse> {
    const attempt = ++request.state.attempts;
    const events = request.events;
    if (!events) return forward(send, request);
    return reported(send, request, events, attempt);
  };
}

// Not async, like the rest of the hot path: while the answer is awaited, a call holds two closures
// here, not a suspended function. A sink that throws on the answer fails the attempt, as it would in
// an async function's try block.
function reported(send: Next, request: HttpRequest, events: EventSink, attempt: number): Promise<HttpResponse> {
  const started = performance.now();
  const failed = (cause: unknown): never => {
    const error = toSluiceError(cause, request, request.signal);
    events({
      type: 'attempt',
      requestId: request.state.id,
      method: request.method,
      url: redactUrl(request.url),
      attempt,
      durationMs: performance.now() - started,
      error,
    });
    throw error;
  };
  return forward(send, request).then((response) => {
    try {
      events({
        type: 'attempt',
        requestId: request.state.id,
        method: request.method,
        url: redactUrl(request.url),
        attempt,
        status: response.status,
        durationMs: performance.now() - started,
        responseRequestId: response.header('x-request-id') ?? undefined,
      });
    } catch (cause) {
      failed(cause);
    }
    return response;
  }, failed);
}
