import { createRequire } from 'node:module';
import type * as Otel from '@opentelemetry/api';
import { SluiceError } from './errors.js';
import { redactUrl } from './redact.js';
import type { CallState, HttpRequest } from './request.js';
import type { HttpResponse } from './response.js';
import type { EventSink, Next, SluiceEvent } from './types.js';

type Api = typeof Otel;
let loaded: Api | null | undefined;

/** `@opentelemetry/api` if the application installed it (an optional peer), else null: no cost then. */
function otel(): Api | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@opentelemetry/api') as Api;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** What the chain wires in when OpenTelemetry is there. */
export interface Telemetry {
  /** Wraps the whole call: one span per call (`sluice GET`), parent of its attempts. */
  call(run: Next): Next;
  /** Wraps each wire attempt: an HTTP client span (`GET`), `traceparent` injected, duration recorded. */
  attempt(send: Next): Next;
  /** Token events: spans for token requests and lock waits, refresh and lock-wait metrics. */
  events: EventSink;
}

const setter: Otel.TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

function errorType(error: unknown): string {
  if (error instanceof SluiceError) return error.code;
  return error instanceof Error ? error.name : 'Error';
}

/**
 * Spans and metrics after the OpenTelemetry HTTP client semantic conventions, through the global
 * tracer and meter providers the application registered. URLs are redacted; no header or body is
 * recorded. Undefined when `@opentelemetry/api` is not installed.
 */
export function telemetry(version = '0.1.0'): Telemetry | undefined {
  const api = otel();
  if (!api) return undefined;
  const tracer = api.trace.getTracer('sluice', version);
  const meter = api.metrics.getMeter('sluice', version);
  const duration = meter.createHistogram('http.client.request.duration', {
    unit: 's',
    description: 'Duration of HTTP client requests (each wire attempt).',
  });
  const refreshes = meter.createCounter('sluice.token.refreshes', {
    description: 'Token requests this process sent (logins, refreshes, renewals).',
  });
  const lockWaits = meter.createHistogram('sluice.token.lock_wait.duration', {
    unit: 's',
    description: 'Time spent waiting for the shared refresh lock.',
  });
  // Metrics have no proxy in @opentelemetry/api 1.x: a meter taken while no MeterProvider is registered
  // stays a no-op for good, so attempts are then not timed at all.
  const measuring = meter.constructor !== api.createNoopMeter().constructor;
  const calls = new WeakMap<CallState, Otel.Context>();
  const unsampled = new WeakMap<CallState, Otel.Context>();
  /** The request with the trace-context headers of `context` (W3C `traceparent`, through the global propagator). */
  const withContext = (request: HttpRequest, context: Otel.Context): HttpRequest => {
    const carrier: Record<string, string> = {};
    api.propagation.inject(context, carrier, setter);
    let outgoing = request;
    for (const [name, value] of Object.entries(carrier)) outgoing = outgoing.withHeader(name, value);
    return outgoing;
  };
  const tokenSpans = new Map<string, Otel.Span>();
  const { SpanKind, SpanStatusCode } = api;

  const finish = (span: Otel.Span, response: HttpResponse | undefined, error: unknown) => {
    if (response) {
      span.setAttribute('http.response.status_code', response.status);
      if (response.status >= 400) {
        span.setAttribute('error.type', String(response.status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    } else {
      span.setAttribute('error.type', errorType(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorType(error) });
    }
    span.end();
  };

  const recorded = async (run: Next, request: HttpRequest, span: Otel.Span) => {
    try {
      const response = await run(request);
      finish(span, response, undefined);
      return response;
    } catch (error) {
      finish(span, undefined, error);
      throw error;
    }
  };
  const timedAttempt = async (send: Next, request: HttpRequest, span: Otel.Span, measured: Otel.Attributes) => {
    const started = performance.now();
    try {
      const response = await send(request);
      duration.record((performance.now() - started) / 1000, {
        ...measured,
        'http.response.status_code': response.status,
      });
      finish(span, response, undefined);
      return response;
    } catch (error) {
      duration.record((performance.now() - started) / 1000, { ...measured, 'error.type': errorType(error) });
      finish(span, undefined, error);
      throw error;
    }
  };

  // The global tracer provider is a proxy; while no SDK has been registered behind it, a call has no
  // span to start and no trace context to carry: nothing is built (checked per call, so an SDK
  // registered later is picked up).
  const noSdk = new api.ProxyTracerProvider().getDelegate();
  const tracing = (): boolean => {
    const provider = api.trace.getTracerProvider();
    return !(provider instanceof api.ProxyTracerProvider) || provider.getDelegate() !== noSdk;
  };

  const startCall = (run: Next, request: HttpRequest): Promise<HttpResponse> => {
    if (!tracing()) return run(request);
    const parent = api.context.active();
    const span = tracer.startSpan(
      `sluice ${request.method}`,
      { kind: SpanKind.INTERNAL, attributes: { 'http.request.method': request.method } },
      parent,
    );
    if (!span.isRecording()) {
      // No SDK: nothing more is built. An SDK that did not sample this call: no spans, but its
      // attempts still carry the trace context (and the "not sampled" flag) downstream.
      if (api.isSpanContextValid(span.spanContext())) unsampled.set(request.state, api.trace.setSpan(parent, span));
      return run(request);
    }
    span.setAttribute('url.full', redactUrl(request.url));
    calls.set(request.state, api.trace.setSpan(parent, span));
    return recorded(run, request, span);
  };

  return {
    call(run) {
      // Not async: a call that is not recorded (no SDK) adds no promise of its own.
      return function tracedCall(request: HttpRequest) {
        try {
          return startCall(run, request);
        } catch (error) {
          return Promise.reject(error);
        }
      };
    },

    attempt(send) {
      /** A call that is not traced still has its attempts' durations measured. */
      const measuredOnly = async (request: HttpRequest) => {
        const started = performance.now();
        const method = { 'http.request.method': request.method };
        try {
          const response = await send(request);
          const seconds = (performance.now() - started) / 1000;
          duration.record(seconds, { ...method, 'http.response.status_code': response.status });
          return response;
        } catch (error) {
          duration.record((performance.now() - started) / 1000, { ...method, 'error.type': errorType(error) });
          throw error;
        }
      };
      const startAttempt = (request: HttpRequest): Promise<HttpResponse> => {
        const parent = calls.get(request.state);
        if (!parent) {
          const context = unsampled.get(request.state);
          const outgoing = context ? withContext(request, context) : request;
          return measuring ? measuredOnly(outgoing) : send(outgoing);
        }
        const url = new URL(request.url);
        const resends = request.state.attempts;
        const attributes: Otel.Attributes = {
          'http.request.method': request.method,
          'url.full': redactUrl(request.url),
          'server.address': url.hostname,
          'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
        };
        if (resends > 0) attributes['http.request.resend_count'] = resends;
        const span = tracer.startSpan(request.method, { kind: SpanKind.CLIENT, attributes }, parent);
        const outgoing = withContext(request, api.trace.setSpan(parent, span));
        const measured = { 'http.request.method': request.method, 'server.address': url.hostname };
        return timedAttempt(send, outgoing, span, measured);
      };
      return function tracedAttempt(request: HttpRequest) {
        try {
          return startAttempt(request);
        } catch (error) {
          return Promise.reject(error);
        }
      };
    },

    events(event: SluiceEvent) {
      if (event.type !== 'token') return;
      const { key, action } = event;
      if (action === 'requesting') {
        tokenSpans.get(key)?.end();
        tokenSpans.set(key, tracer.startSpan('sluice token request', { kind: SpanKind.INTERNAL }));
      } else if (action === 'received' || action === 'failed' || action === 'refresh-token-lost') {
        const span = tokenSpans.get(key);
        if (!span) return;
        tokenSpans.delete(key);
        if (action === 'received') {
          refreshes.add(1, { outcome: 'ok' });
          span.setAttribute('sluice.token.generation', event.generation ?? 0);
        } else {
          refreshes.add(1, { outcome: 'error' });
          span.setAttribute('error.type', event.error?.code ?? action);
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      } else if (action === 'lock-acquired' && event.durationMs !== undefined) {
        const end = Date.now();
        tracer.startSpan('sluice token lock wait', { startTime: end - event.durationMs }).end(end);
        lockWaits.record(event.durationMs / 1000);
      }
    },
  };
}
