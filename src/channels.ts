import { channel } from 'node:diagnostics_channel';
import { redactUrl } from './redact.js';
import type { HttpRequest } from './request.js';
import type { HttpResponse } from './response.js';
import type { EventSink, Next, SluiceEvent } from './types.js';

/**
 * Sluice's own `node:diagnostics_channel` channels. Every message is already redacted (URLs without
 * secret query values, no headers, no bodies, errors as SluiceErrors whose JSON is redacted), and
 * nothing is built unless someone subscribed.
 *
 * - `sluice:request:start` `{ requestId, method, url }`: a call entered the chain.
 * - `sluice:request:end` `{ requestId, method, url, status, durationMs, attempts }`
 * - `sluice:request:error` `{ requestId, method, url, error, durationMs, attempts }`
 * - `sluice:attempt`, `sluice:retry`, `sluice:redirect`, `sluice:reissue`, `sluice:token`: the events
 *   `onEvent` receives, one channel per event type.
 */
export const channels = {
  start: channel('sluice:request:start'),
  end: channel('sluice:request:end'),
  error: channel('sluice:request:error'),
  events: {
    attempt: channel('sluice:attempt'),
    retry: channel('sluice:retry'),
    'retry-skipped': channel('sluice:retry'),
    redirect: channel('sluice:redirect'),
    reissue: channel('sluice:reissue'),
    token: channel('sluice:token'),
  } satisfies Record<SluiceEvent['type'], unknown>,
};

const eventChannels = Object.values(channels.events);

/** True when some event channel has a subscriber: events must then be produced. */
export function eventsSubscribed(): boolean {
  for (const each of eventChannels) if (each.hasSubscribers) return true;
  return false;
}

/** Publishes an event on its channel, if subscribed. */
export const publishEvent: EventSink = (event) => {
  const target = channels.events[event.type];
  if (target.hasSubscribers) target.publish(event);
};

/** `run`, publishing start and end (or error) of each call while someone listens. */
export function traced(run: Next): Next {
  return function tracedRun(request: HttpRequest): Promise<HttpResponse> {
    if (!channels.start.hasSubscribers && !channels.end.hasSubscribers && !channels.error.hasSubscribers) {
      return run(request);
    }
    return publishing(run, request);
  };
}

async function publishing(run: Next, request: HttpRequest): Promise<HttpResponse> {
  const started = performance.now();
  const base = { requestId: request.state.id, method: request.method, url: redactUrl(request.url) };
  if (channels.start.hasSubscribers) channels.start.publish(base);
  try {
    const response = await run(request);
    if (channels.end.hasSubscribers) {
      channels.end.publish({
        ...base,
        status: response.status,
        durationMs: performance.now() - started,
        attempts: request.state.attempts,
      });
    }
    return response;
  } catch (error) {
    if (channels.error.hasSubscribers) {
      channels.error.publish({
        ...base,
        error,
        durationMs: performance.now() - started,
        attempts: request.state.attempts,
      });
    }
    throw error;
  }
}
