/**
 * OpenTelemetry (issue 12, item 1): spans recorded with the SDK's in-memory exporter, metrics with its
 * in-memory metric exporter, trace context on the wire; no secret in any attribute.
 */
import { context, metrics, propagation, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientCredentials, createClient } from '../../src/index.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { json, startServer } from '../helpers/server.js';

const spans = new InMemorySpanExporter();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
beforeAll(() => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});
afterAll(() => {
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
});
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  spans.reset();
});

describe('OpenTelemetry', () => {
  it('a span per call, a client span per attempt (resend_count), token spans, traceparent on the wire, metrics; no secret', async () => {
    const auth = await startAuthServer();
    const api = await startApiServer({ auth });
    let flaky = 0;
    const edge = await startServer((request, response) => {
      if (flaky++ === 0) return json(response, 503, {});
      json(response, 200, { traceparent: request.headers.traceparent });
    });
    closers.push(auth.close, api.close, edge.close);
    const client = createClient({
      baseURL: api.url,
      redact: ['key'],
      retry: { baseDelay: 1 },
      auth: {
        grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }),
        origins: [edge.url],
      },
    });
    closers.push(() => client.close());
    await client.get('whoami');
    const echoed = (await client.get(`${edge.url}/flaky?key=QUERY-SECRET`)) as { traceparent: string };

    const finished = spans.getFinishedSpans();
    const calls = finished.filter((span) => span.name === 'sluice GET');
    expect(calls).toHaveLength(2);
    const flakyCall = calls[1];
    const attempts = finished.filter(
      (span) => span.kind === SpanKind.CLIENT && span.parentSpanContext?.spanId === flakyCall?.spanContext().spanId,
    );
    expect(attempts.map((span) => span.attributes['http.response.status_code'])).toEqual([503, 200]);
    expect(attempts[0]?.attributes['http.request.resend_count']).toBeUndefined();
    expect(attempts[1]?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.request.resend_count': 1,
      'server.address': '127.0.0.1',
      'server.port': edge.port,
    });
    expect(attempts[0]?.attributes['error.type']).toBe('503');
    expect(String(attempts[1]?.attributes['url.full'])).toMatch(/key=(\*|%5B|\[)/i);
    // The server saw the second attempt's own span as the parent, in the call's trace.
    const [, traceId, parentId] = echoed.traceparent.split('-');
    expect(traceId).toBe(flakyCall?.spanContext().traceId);
    expect(parentId).toBe(attempts[1]?.spanContext().spanId);
    expect(finished.some((span) => span.name === 'sluice token request')).toBe(true);

    await reader.forceFlush();
    const names = metricExporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
      .map((metric) => metric.descriptor.name);
    expect(names).toContain('http.client.request.duration');
    expect(names).toContain('sluice.token.refreshes');

    const token = (await client.auth.token()).accessToken;
    const text = JSON.stringify(finished.map((span) => ({ name: span.name, attributes: span.attributes })));
    for (const secret of [token, 'app-secret', 'QUERY-SECRET']) expect(text).not.toContain(secret);
  });

  it("a call under the caller's span is its child; under an unsampled parent no span is recorded, yet traceparent goes out (flags 00)", async () => {
    const edge = await startServer((request, response) =>
      json(response, 200, { traceparent: request.headers.traceparent }),
    );
    closers.push(edge.close);
    const client = createClient({ baseURL: edge.url });
    closers.push(() => client.close());
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const remote = (flags: number) =>
      trace.setSpanContext(context.active(), {
        traceId,
        spanId: '00f067aa0ba902b7',
        traceFlags: flags,
        isRemote: true,
      });
    const sampled = (await context.with(remote(TraceFlags.SAMPLED), () => client.get('a'))) as { traceparent: string };
    expect(sampled.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    const call = spans.getFinishedSpans().find((span) => span.name === 'sluice GET');
    expect(call?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    spans.reset();
    const unsampled = (await context.with(remote(TraceFlags.NONE), () => client.get('b'))) as { traceparent: string };
    expect(unsampled.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    expect(spans.getFinishedSpans()).toEqual([]);
  });

  it('telemetry: false records nothing and sends no traceparent', async () => {
    const edge = await startServer((request, response) =>
      json(response, 200, { traceparent: request.headers.traceparent ?? null }),
    );
    closers.push(edge.close);
    const client = createClient({ baseURL: edge.url, telemetry: false });
    closers.push(() => client.close());
    expect(await client.get('x')).toEqual({ traceparent: null });
    expect(spans.getFinishedSpans()).toEqual([]);
  });
});
