import { Console } from 'node:console';
import { builtIn } from '../src/compose.js';
import { own } from '../src/own.js';
import { redactHeaders, redactText, redactUrl, redactValue } from '../src/redact.js';
import type { HttpRequest } from '../src/request.js';
import type { EventSink, Logger, Middleware, SluiceEvent } from '../src/types.js';

/**
 * Calls `logger` the way it reads best: pino and plain `(fields, message)` loggers get the fields
 * first (structured); winston gets the message first (its first argument is the message, the object
 * its metadata); a Node `Console` gets one line, the message then the fields as JSON.
 */
export function adaptLogger(logger: Logger, level: 'debug' | 'info' = 'info'): Logger {
  const known = adapted.get(logger);
  if (known && level === 'info') return known;
  let result = logger;
  if (logger instanceof Console || logger === globalThis.console) {
    // A Console has no levels of its own: debug lines are written only with logLevel 'debug'.
    const target = logger as unknown as Record<keyof Logger, (line: string) => void>;
    const line = (name: keyof Logger) => (fields: object, message?: string) =>
      target[name](`${message ?? ''} ${JSON.stringify(fields)}`);
    result = {
      debug: level === 'debug' ? line('debug') : () => {},
      info: line('info'),
      warn: line('warn'),
      error: line('error'),
    };
  } else if (isWinston(logger)) {
    const target = logger as unknown as Record<keyof Logger, (message: string, meta: object) => void>;
    const flip = (level: keyof Logger) => (fields: object, message?: string) => target[level](message ?? '', fields);
    result = { debug: flip('debug'), info: flip('info'), warn: flip('warn'), error: flip('error') };
  }
  if (level === 'info') adapted.set(logger, result);
  return result;
}

const adapted = new WeakMap<Logger, Logger>();

/** winston's Logger: a transport-based logger whose first argument is the message. */
function isWinston(logger: Logger): boolean {
  const candidate = logger as unknown as Record<string, unknown>;
  return typeof candidate.add === 'function' && typeof candidate.configure === 'function' && 'transports' in candidate;
}

/** Token events an operator should see: something failed, and the fleet is working around it. */
const WARN_ACTIONS = new Set([
  'failed',
  'store-unavailable',
  'store-entry-ignored',
  'store-write-failed',
  'rate-limited',
  'lock-lost',
]);

/** Token events worth an info line: this process has a new token. */
const INFO_ACTIONS = new Set(['obtained', 'stored']);

export interface LoggingOptions {
  /** pino, console, winston, or anything with debug/info/warn/error. */
  logger: Logger;
  /** `debug` adds a line per request with its redacted headers and body. @default 'info' */
  level?: 'debug' | 'info';
}

function describe(event: SluiceEvent): [level: keyof Logger, fields: object, message: string] {
  switch (event.type) {
    case 'attempt': {
      const { error } = event;
      const durationMs = Math.round(event.durationMs);
      const outcome = error ? error.code : event.status;
      const fields = {
        sluice: 'attempt',
        requestId: event.requestId,
        method: event.method,
        url: event.url,
        attempt: event.attempt,
        status: event.status,
        durationMs,
        responseRequestId: event.responseRequestId,
        code: error?.code,
      };
      const failed = error !== undefined || (event.status ?? 0) >= 500;
      return [failed ? 'warn' : 'info', fields, `${event.method} ${event.url} ${outcome} ${durationMs}ms`];
    }
    case 'retry':
      return ['warn', event, `${event.method} ${event.url} retry in ${event.delayMs}ms (${event.reason})`];
    case 'retry-skipped':
      return ['info', event, `${event.method} ${event.url} not retried: ${event.reason}`];
    case 'redirect':
      return ['info', event, `${event.method} ${event.url} redirected (${event.status}) to ${event.location}`];
    case 'reissue':
      return ['info', event, `${event.method} ${event.url} re-issued after ${event.reason}`];
    case 'token': {
      const { error, ...rest } = event;
      const fields = error ? { ...rest, code: error.code, message: error.message } : rest;
      // One info line per new token (where it was obtained); the steps to it are debug.
      const level = WARN_ACTIONS.has(event.action)
        ? 'warn'
        : event.action === 'refresh-token-lost'
          ? 'error'
          : INFO_ACTIONS.has(event.action)
            ? 'info'
            : 'debug';
      return [level, fields, `token ${event.action}${event.reason ? `: ${event.reason}` : ''}`];
    }
  }
}

/** An event listener that writes one structured line per event; all fields are already redacted. */
export function logEvents(options: LoggingOptions): EventSink {
  const logger = adaptLogger(options.logger, options.level);
  return function logEvent(event) {
    const [level, fields, message] = describe(event);
    logger[level](event.type === 'attempt' ? fields : { sluice: event.type, ...fields }, message);
  };
}

function describeBody(request: HttpRequest): unknown {
  const { body } = request;
  if (body === null) return undefined;
  if (typeof body === 'string') {
    try {
      return redactValue(JSON.parse(body));
    } catch {
      return redactText(body.slice(0, 512));
    }
  }
  if (body instanceof URLSearchParams) return redactText(body.toString());
  return `[${(body as object).constructor?.name ?? typeof body}]`;
}

/** Each logging layer's `sinkFor` (see `loggingSink`). */
const SINKS = new WeakMap<Middleware, (parent: EventSink | undefined) => EventSink>();

/**
 * For a chain whose first layer is `layer`, a logging layer: the event sink it gives the requests
 * below it, in place of `parent`. The chain gives it to a call's request at once, so the layer passes
 * the request on as it is instead of a copy held for the whole call. Nothing is above the first layer,
 * so no event reaches the log that did not before. `undefined` for any other middleware.
 */
export function loggingSink(layer: Middleware | undefined): ((parent: EventSink | undefined) => EventSink) | undefined {
  return layer === undefined ? undefined : SINKS.get(layer);
}

/**
 * Logs one line per wire attempt (method, redacted URL, status, duration, attempt, request id), and
 * each retry, redirect and re-issue, by listening to the events the chain below emits.
 */
export function logging(given: LoggingOptions): Middleware {
  const options = own(given);
  const { level = 'info' } = options;
  const logger = adaptLogger(options.logger, level);
  const log = logEvents(options);
  const tees = new WeakMap<EventSink, EventSink>();
  // The sinks this layer made: a request that already carries one (see `loggingSink`) goes on as it is.
  const made = new WeakSet<EventSink>([log]);
  const sinkFor = (parent: EventSink | undefined): EventSink => {
    if (!parent) return log;
    let tee = tees.get(parent);
    if (!tee) {
      tee = (event) => {
        log(event);
        parent(event);
      };
      tees.set(parent, tee);
      made.add(tee);
    }
    return tee;
  };
  const layer = builtIn(function logRequests(request, next) {
    if (level === 'debug') {
      logger.debug(
        {
          sluice: 'request',
          requestId: request.state.id,
          method: request.method,
          url: redactUrl(request.url),
          headers: redactHeaders(request.headers),
          body: describeBody(request),
        },
        `${request.method} ${redactUrl(request.url)}`,
      );
    }
    const { events } = request;
    return next(events !== undefined && made.has(events) ? request : request.with({ events: sinkFor(events) }));
  });
  SINKS.set(layer, sinkFor);
  return layer;
}
