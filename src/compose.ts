import { toSluiceError } from './normalize.js';
import { redactUrl } from './redact.js';
import type { HttpRequest } from './request.js';
import type { HttpResponse } from './response.js';
import type { EventSink, Middleware, Next } from './types.js';

/** Sluice's own middleware (and chain terminal): none of them keeps the promise it hands up for itself. */
const OURS = new WeakSet<object>();

/** `next` functions below which, down to the transport, every layer is Sluice's own. */
const PURE = new WeakSet<Next>();

/** Marks a middleware (or a chain's terminal) as Sluice's own: see `after`. */
export function builtIn<T extends Middleware | Next>(fn: T): T {
  OURS.add(fn);
  return fn;
}

/** Marks `next` as leading only through Sluice's own layers (the chain does this for its entry point). */
export function markPure(next: Next): Next {
  PURE.add(next);
  return next;
}

export function isOurs(fn: Middleware | Next): boolean {
  return OURS.has(fn);
}

export function isPure(next: Next): boolean {
  return PURE.has(next);
}

/** Outermost first: array order is wrapping order. Unlike koa-compose, `next` may be called more than once. */
export function compose(middleware: readonly Middleware[], terminal: Next): Next {
  for (const fn of middleware) {
    if (typeof fn !== 'function') throw new TypeError('compose: every middleware must be a function');
  }
  let next = terminal;
  let pure = OURS.has(terminal);
  if (pure) PURE.add(terminal);
  for (let i = middleware.length - 1; i >= 0; i--) {
    const fn = middleware[i]!;
    const below = next;
    next = (request) => fn(request, below);
    pure &&= OURS.has(fn);
    if (pure) PURE.add(next);
  }
  return next;
}

type Step = (value: never, a: never, b: never) => HttpResponse | Promise<HttpResponse>;

/**
 * What the layers that only look at an attempt's answer (the attempt report, redirects, refresh, the
 * body read, retry, errors) do with it, in one continuation instead of a `.then` each: while a call
 * waits, it holds one promise and this list, and the answer goes up through every step in one
 * microtask. The steps run bottom-up and see what a `.then` chain would have given them; a step that
 * returns a promise (a body read, a retry) holds the rest until it settles.
 */
export class Answer {
  readonly promise: Promise<HttpResponse>;
  started = false;
  // Four slots a step (on answer, on failure, a, b), room for the default chain's seven made at once.
  #steps: unknown[] = new Array(28);
  #length = 0;
  #resolve: ((value: HttpResponse | Promise<HttpResponse>) => void) | undefined = undefined;
  #reject: ((error: unknown) => void) | undefined = undefined;
  #settled = false;

  /**
   * The answer to `sent`; or, given `SETTLED_BY_CALLER`, an answer the caller (a transport of Sluice's
   * own) settles with `settle()`. Either way it is the latest: the layers above may add their steps to it.
   */
  constructor(sent: Promise<HttpResponse> | typeof SETTLED_BY_CALLER) {
    if (sent === SETTLED_BY_CALLER) {
      this.promise = new Promise((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
    } else {
      // Not a promise (a middleware of yours that forgot its `return`): the TypeError `.then` always threw.
      this.promise = sent.then(
        (response) => this.#run(response, false, 0),
        (error: unknown) => this.#run(error, true, 0),
      );
    }
    latest = this;
  }

  /**
   * The attempt's outcome (for an answer its caller settles): it goes up through every step in a
   * microtask of its own, never inside the transport's callback, and after every layer above has added
   * its step (they do so as the promise is handed up, synchronously). Only the first outcome counts, as
   * with a promise.
   */
  settle(value: unknown, failed: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    queueMicrotask(() => {
      try {
        this.#resolve?.(this.#run(value, failed, 0));
      } catch (error) {
        this.#reject?.(error);
      }
    });
  }

  add(onFulfilled: Step | undefined, onRejected: Step | undefined, a: unknown, b: unknown): void {
    const steps = this.#steps;
    const at = this.#length;
    steps[at] = onFulfilled;
    steps[at + 1] = onRejected;
    steps[at + 2] = a;
    steps[at + 3] = b;
    this.#length = at + 4;
  }

  #run(given: unknown, rejected: boolean, from: number): HttpResponse | Promise<HttpResponse> {
    this.started = true;
    if (latest === this) latest = undefined;
    const steps = this.#steps;
    const length = this.#length;
    let value = given;
    let failed = rejected;
    for (let i = from; i < length; i += 4) {
      const step = steps[failed ? i + 1 : i] as ((value: unknown, a: unknown, b: unknown) => unknown) | undefined;
      if (step === undefined) continue;
      try {
        const out = step(value, steps[i + 2], steps[i + 3]);
        if (out instanceof Promise) {
          const rest = i + 4;
          if (rest === length) return out as Promise<HttpResponse>;
          return out.then(
            (response: HttpResponse) => this.#run(response, false, rest),
            (error: unknown) => this.#run(error, true, rest),
          );
        }
        value = out;
        failed = false;
      } catch (error) {
        value = error;
        failed = true;
      }
    }
    // Done: the steps (and the call's objects they hold) are not kept for the life of a streamed body.
    this.#steps = NO_STEPS;
    this.#length = 0;
    if (failed) throw value;
    return value as HttpResponse;
  }
}

const NO_STEPS: unknown[] = [];

/** See `Answer`'s constructor. */
export const SETTLED_BY_CALLER: unique symbol = Symbol('settled by its caller');

/** The answer made last: the layers above the one that made it add their steps to it. */
let latest: Answer | undefined;

/**
 * `sent.then(onFulfilled, onRejected)`, with `a` and `b` handed to them, for a layer whose `next`
 * gave `sent`. When `sent` is the promise of an answer a layer below made, with only Sluice's own
 * layers in between (none of which keeps that promise for itself) and before the answer came, the
 * step joins that answer and `sent` itself is returned: no promise, reaction or closure of its own.
 */
export function after<A, B, T = HttpResponse>(
  sent: Promise<HttpResponse>,
  next: Next,
  onFulfilled: ((response: HttpResponse, a: A, b: B) => T | Promise<T>) | undefined,
  onRejected: ((error: unknown, a: A, b: B) => T | Promise<T>) | undefined,
  a: A,
  b: B,
): Promise<T> {
  const answer = latest;
  if (answer !== undefined && answer.promise === sent && !answer.started && PURE.has(next)) {
    answer.add(onFulfilled as Step | undefined, onRejected as Step | undefined, a, b);
    return sent as unknown as Promise<T>;
  }
  const made = new Answer(sent);
  made.add(onFulfilled as Step | undefined, onRejected as Step | undefined, a, b);
  return made.promise as unknown as Promise<T>;
}

/**
 * No layer may add a step to the latest answer: for the chain's terminal, after a transport that is
 * not Sluice's own (which might hand up, and look at, another chain's answer).
 */
export function forgetLatest(): void {
  latest = undefined;
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

/** One attempt being reported: what its `attempt` event needs once the answer comes. */
class AttemptReport {
  readonly request: HttpRequest;
  readonly events: EventSink;
  readonly attempt: number;
  readonly started: number;
  constructor(request: HttpRequest, events: EventSink, attempt: number, started: number) {
    this.request = request;
    this.events = events;
    this.attempt = attempt;
    this.started = started;
  }
}

// Not async, like the rest of the hot path: while the answer is awaited, a call holds this report
// and its step, not a suspended function. A sink that throws on the answer fails the attempt, as it
// would in an async function's try block.
function reported(send: Next, request: HttpRequest, events: EventSink, attempt: number): Promise<HttpResponse> {
  const report = new AttemptReport(request, events, attempt, performance.now());
  return after(forward(send, request), send, reportAnswer, reportFailure, report, undefined);
}

function reportAnswer(response: HttpResponse, report: AttemptReport): HttpResponse {
  const { request } = report;
  try {
    report.events({
      type: 'attempt',
      requestId: request.state.id,
      method: request.method,
      url: redactUrl(request.url),
      attempt: report.attempt,
      status: response.status,
      durationMs: performance.now() - report.started,
      responseRequestId: response.header('x-request-id') ?? undefined,
    });
  } catch (cause) {
    reportFailure(cause, report);
  }
  return response;
}

function reportFailure(cause: unknown, report: AttemptReport): never {
  const { request } = report;
  const error = toSluiceError(cause, request, request.signal);
  report.events({
    type: 'attempt',
    requestId: request.state.id,
    method: request.method,
    url: redactUrl(request.url),
    attempt: report.attempt,
    durationMs: performance.now() - report.started,
    error,
  });
  throw error;
}
