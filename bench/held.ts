/**
 * Memory held per request in flight: a local server holds 1,024 requests unanswered; the heap after a
 * full collection, minus the heap before they were sent, divided by 1,024. What a client keeps alive
 * for the whole wire wait is what each young-generation collection must copy (and, past two
 * collections, promote) at high concurrency. Runs as its own process with --expose-gc; the server
 * runs in the same process, so its per-request objects are in both clients' figures alike.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { sluice } from './lib.js';

const IN_FLIGHT = 1024;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('bench/held.ts needs --expose-gc');

const held: ServerResponse[] = [];
const server = createServer((_, response) => held.push(response));
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const answerAll = () => {
  for (const response of held.splice(0)) {
    response.setHeader('content-type', 'application/json');
    response.end('{"id":1,"name":"item"}');
  }
};

const { createClient, customGrant } = sluice;
const api = createClient({
  baseURL: base,
  auth: {
    grant: customGrant({
      id: 'bench-held',
      obtain: async () => ({ accessToken: 'held-bench-token', tokenType: 'Bearer', expiresIn: 3600 }),
    }),
  },
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  connections: 2 * IN_FLIGHT,
});
const agent = new Agent({ connections: 2 * IN_FLIGHT });
const clients: [string, (path: string) => Promise<unknown>][] = [
  ['undici.request', async (path) => (await request(base + path, { dispatcher: agent })).body.json()],
  ['sluice (full chain)', (path) => api.get(path)],
];

async function heldPerRequest(get: (path: string) => Promise<unknown>): Promise<number> {
  const round = async (measure: boolean) => {
    gc?.();
    const before = process.memoryUsage().heapUsed;
    const calls = Array.from({ length: IN_FLIGHT }, (_, i) => get(`items/${i}`));
    while (held.length < IN_FLIGHT) await new Promise((resolve) => setTimeout(resolve, 5));
    gc?.();
    const during = process.memoryUsage().heapUsed;
    answerAll();
    await Promise.all(calls);
    return measure ? (during - before) / IN_FLIGHT : 0;
  };
  await round(false); // connections opened, code warm
  const samples = [await round(true), await round(true), await round(true)];
  return samples.sort((a, b) => a - b)[1]!;
}

const result: Record<string, number> = {};
for (const [name, get] of clients) result[name] = await heldPerRequest(get);
await api.close();
await agent.close();
server.closeAllConnections();
server.close();
process.send?.(result);
