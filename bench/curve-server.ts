/**
 * The cost-curve bench's server, in a process of its own: `origins` plain HTTP listeners on 127.0.0.1
 * sharing one handler. GET /bytes/:n answers n bytes of JSON (a string), or of octet-stream with
 * ?raw; POST /sink reads the body and answers {"n": bytes read}. No auth check: the clients send a
 * bearer token anyway, so header handling is what it would be.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const origins = Number(process.argv[2] ?? 50);
const bodies = new Map<number, Buffer>();
const jsonOf = (n: number) => {
  let body = bodies.get(n);
  if (!body) {
    body = Buffer.from(JSON.stringify('x'.repeat(Math.max(0, n - 2))));
    bodies.set(n, body);
  }
  return body;
};
const chunk = Buffer.alloc(64 * 1024, 120);

function handle(request: IncomingMessage, response: ServerResponse) {
  const url = request.url ?? '/';
  if (request.method === 'POST') {
    let n = 0;
    request.on('data', (part: Buffer) => {
      n += part.length;
    });
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(`{"n":${n}}`);
    });
    return;
  }
  const match = /^\/bytes\/(\d+)(\?raw)?/.exec(url);
  if (!match) {
    response.writeHead(404).end();
    return;
  }
  const n = Number(match[1]);
  if (!match[2]) {
    const body = jsonOf(n);
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    response.end(body);
    return;
  }
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  let left = n;
  const pump = () => {
    while (left > 0) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= part.length;
      if (!response.write(part)) {
        response.once('drain', pump);
        return;
      }
    }
    response.end();
  };
  pump();
}

const urls: string[] = [];
for (let i = 0; i < origins; i++) {
  const server = createServer({ keepAliveTimeout: 10_000 }, handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
}
process.send?.({ urls });
process.on('message', (message) => {
  if (message === 'close') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
