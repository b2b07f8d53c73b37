/**
 * When the logging layer is the chain's first, a call's request starts with its event sink (the chain
 * gives it at once, `loggingSink`), and the layer passes the request on instead of holding a copy for
 * the whole call. What is logged, and what reaches `onEvent`, must stay as it was: the events of the
 * layers below the logging layer, and none of a middleware of yours above it.
 */
import { describe, expect, it } from 'vitest';
import {
  createClient,
  customGrant,
  type HttpRequest,
  HttpResponse,
  type Middleware,
  type SluiceEvent,
} from '../../src/index.js';
import { bytesSource } from '../../src/internals.js';
import { memoryLogger } from '../helpers/logger.js';

const BASE = 'http://api.test';

/** Answers 503 once, then 200: one retry event from the retry layer, below logging. */
function flaky() {
  let calls = 0;
  return {
    send: async (request: HttpRequest) =>
      new HttpResponse({
        status: calls++ === 0 ? 503 : 200,
        headers: { 'content-type': 'application/json' },
        url: request.url,
        body: bytesSource('{"ok":true}'),
        request,
      }),
    close: async () => {},
  };
}

/** A middleware of yours that emits an event of its own on the request it gets. */
function announcing(seen: HttpRequest[]): Middleware {
  return (request, next) => {
    seen.push(request);
    request.events?.({
      type: 'retry',
      requestId: request.state.id,
      method: request.method,
      url: request.url,
      attempt: 99,
      reason: 'mine',
      delayMs: 0,
    });
    return next(request);
  };
}

/**
 * One GET through a client with a logger and `middleware` (the default layers given), against a
 * transport that answers 503 once: the retry attempts each event was about, as logged and as heard.
 */
async function oneCall(middleware: (defaults: readonly Middleware[]) => Middleware[]) {
  const { logger, lines } = memoryLogger();
  const events: SluiceEvent[] = [];
  const api = createClient({
    baseURL: BASE,
    logger,
    transport: flaky(),
    retry: { limit: 1, baseDelay: 0 },
    onEvent: (event) => events.push(event),
    middleware,
  });
  expect(await api.get('items')).toEqual({ ok: true });
  return {
    logged: lines.filter((line) => line.fields.sluice === 'retry').map((line) => line.fields.attempt),
    heard: events.filter((event) => event.type === 'retry').map((event) => event.attempt),
    attemptLines: lines.filter((line) => line.fields.sluice === 'attempt').length,
  };
}

describe('the logging layer on top of the chain', () => {
  it('logs the events of the layers below it and passes them on, from a request that carries its sink already', async () => {
    const below: HttpRequest[] = [];
    // Yours right below logging sees what the logging layer handed on.
    const { logged, heard } = await oneCall((defaults) => [defaults[0]!, announcing(below), ...defaults.slice(1)]);
    // Yours (below logging), then the retry layer's: each logged once, and each reaching onEvent.
    expect(logged).toEqual([99, 1]);
    expect(heard).toEqual([99, 1]);
    expect(below).toHaveLength(1);
  });

  it('a middleware of yours above it: its own events are not logged, as before', async () => {
    const { logged, heard } = await oneCall((defaults) => [announcing([]), ...defaults]);
    expect(logged).toEqual([1]);
    expect(heard).toEqual([99, 1]);
  });

  it('the same logging layer twice in one chain logs each event once', async () => {
    const { logged, attemptLines } = await oneCall((defaults) => [defaults[0]!, ...defaults.slice(1), defaults[0]!]);
    expect(logged).toEqual([1]);
    expect(attemptLines).toBe(2);
  });
});

describe('a logger with no logging layer in the chain', () => {
  // With telemetry off, the logger is the only one that wants token events.
  it.each([
    true,
    false,
  ])('still gets the token lines, and no call produces events for it (telemetry %s)', async (telemetry) => {
    const { logger, lines } = memoryLogger();
    const seen: HttpRequest[] = [];
    const api = createClient({
      baseURL: BASE,
      logger,
      telemetry,
      transport: flaky(),
      retry: { limit: 1, baseDelay: 0 },
      auth: { grant: customGrant({ id: 'no-layer', obtain: async () => ({ accessToken: 'tok', expiresIn: 3600 }) }) },
      // The default layers minus logging; a probe at the bottom sees what every attempt carries.
      middleware: (defaults) => [
        ...defaults.slice(1),
        (request, next) => {
          seen.push(request);
          return next(request);
        },
      ],
    });
    expect(await api.get('items')).toEqual({ ok: true });
    await api.close();
    expect(lines.filter((line) => line.fields.sluice === 'token' && line.level === 'info').length).toBeGreaterThan(0);
    // Nobody listens to attempts: the logger takes token events only, and no layer logs the rest.
    expect(lines.filter((line) => line.fields.sluice !== 'token')).toEqual([]);
    expect(seen).toHaveLength(2);
    for (const request of seen) expect(request.events).toBeUndefined();
  });
});
