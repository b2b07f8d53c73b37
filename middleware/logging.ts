import { own } from '../src/own.js';
import { redactHeaders, redactText, redactUrl, redactValue } from '../src/redact.js';
import type { HttpRequest } from '../src/request.js';
import type { EventSink, Logger, Middleware, SluiceEvent } from '../src/types.js';

/** Token events an operator should see: something failed, and the fleet is working around it. */
const WARN_ACTIONS = new Set([
  'failed',
  'store-unavailable',
  'store-entry-ignored',
  'store-write-failed',
  'rate-limited',
  'lock-lost',
]);

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
      if (event.action === 'requesting' || event.action === 'received')
        return ['debug', fields, `token ${event.action}`];
      const level = WARN_ACTIONS.has(event.action) ? 'warn' : event.action === 'refresh-token-lost' ? 'error' : 'info';
      return [level, fields, `token ${event.action}${event.reason ? `: ${event.reason}` : ''}`];
    }
  }
}

/** An event listener that writes one structured line per event; all fields are already redacted. */
export function logEvents({ logger }: LoggingOptions): EventSink {
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

/**
 * Logs one line per wire attempt (method, redacted URL, status, duration, attempt, request id), and
 * each retry, redirect and re-issue, by listening to the events the chain below emits.
 */
export function logging(given: LoggingOptions): Middleware {
  const options = own(given);
  const { logger, level = 'info' } = options;
  const log = logEvents(options);
  const tees = new WeakMap<EventSink, EventSink>();
  const sinkFor = (parent: EventSink | undefined): EventSink => {
    if (!parent) return log;
    let tee = tees.get(parent);
    if (!tee) {
      tee = (event) => {
        log(event);
        parent(event);
      };
      tees.set(parent, tee);
    }
    return tee;
  };
  return function logRequests(request, next) {
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
    return next(request.with({ events: sinkFor(request.events) }));
  };
}
