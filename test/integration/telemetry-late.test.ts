/**
 * OpenTelemetry registered after the client was made: calls made before build nothing and send no trace
 * context; calls made after are recorded and carry `traceparent` (the client checks per call).
 */
import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, expect, it } from 'vitest';
import { createClient } from '../../src/index.js';
import { json, startServer } from '../helpers/server.js';

afterAll(() => {
  trace.disable();
  propagation.disable();
});

it('an SDK registered after createClient() is picked up by the next call', async () => {
  const server = await startServer((_, response) => json(response, 200, { ok: true }));
  const api = createClient({ baseURL: server.url });
  await api.get('before');
  const spans = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  await api.get('after');
  expect(server.seen[0]?.headers.traceparent).toBeUndefined();
  expect(server.seen[1]?.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const names = spans.getFinishedSpans().map((span) => span.name);
  expect(names).toContain('sluice GET');
  expect(names).toContain('GET');
  await api.close();
  await server.close();
});
