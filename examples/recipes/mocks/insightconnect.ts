/** A Rapid7 InsightConnect-style API look-alike: an API key header, job routes and routes that fail on purpose. */
import { createServer } from 'node:http';
import { json, listen, urlOf } from './http.js';

/** Options of {@link startInsightConnect}. */
export interface InsightConnectOptions {
  /** Accepted `X-API-Key`. @default 'ic-key' */
  apiKey?: string;
}

/** Starts the mock InsightConnect API on 127.0.0.1 and an ephemeral port. */
export async function startInsightConnect(options: InsightConnectOptions = {}) {
  const { apiKey = 'ic-key' } = options;
  let requests = 0;
  const server = createServer((request, response) => {
    requests++;
    request.resume();
    if (request.headers['x-api-key'] !== apiKey) {
      json(response, 401, { message: 'Unauthorized' });
      return;
    }
    const { pathname } = urlOf(request);
    const job = /^\/api\/v1\/jobs\/([^/]+)$/.exec(pathname)?.[1];
    if (request.method === 'GET' && pathname === '/api/v1/jobs') {
      json(response, 200, { data: [{ id: 'j1', status: 'running' }] });
    } else if (request.method === 'GET' && job !== undefined) {
      if (job === 'j1') json(response, 200, { data: { id: 'j1', status: 'running' } });
      else json(response, 404, { message: 'Job not found' });
    } else if (request.method === 'DELETE' && job !== undefined) {
      response.writeHead(204);
      response.end();
    } else if (request.method === 'GET' && pathname === '/api/v1/broken') {
      const text = '{"data": [';
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      response.end(text);
    } else if (request.method === 'GET' && pathname === '/api/v1/forbidden') {
      json(response, 403, { message: 'Insufficient permissions' });
    } else if (request.method === 'GET' && pathname === '/api/v1/conflict') {
      json(response, 409, { message: 'Job already running' });
    } else if (request.method === 'GET' && pathname === '/api/v1/boom') {
      json(response, 500, { message: 'Internal error' });
    } else {
      json(response, 404, { message: 'Not found' });
    }
  });
  const { url, close } = await listen(server);
  return {
    url,
    /** Requests received. */
    get requests() {
      return requests;
    },
    close,
  };
}

/** A running mock InsightConnect API. */
export type InsightConnectMock = Awaited<ReturnType<typeof startInsightConnect>>;
