/**
 * `npx tsx bench/budget.ts`: how long each budget scenario takes to end in a typed error, against
 * real local servers (issue 9's table). Uses only options every version has, so the same file can be
 * run against an older checkout for a before/after comparison. Every scenario is capped at --cap ms.
 */
import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { sluice } from './lib.js';

const { clientCredentials, createClient } = sluice;

const { values } = parseArgs({ options: { cap: { type: 'string', default: '20000' } } });
const CAP = Number(values.cap);

interface Outcome {
  ms: number;
  what: string;
  tokenRequests?: number;
}

const closers: (() => void)[] = [];

async function http(handler: (response: ServerResponse) => void): Promise<{ url: string; count: () => number }> {
  let count = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      count++;
      handler(response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, count: () => count };
}

async function raw(answer: (socket: Socket, index: number) => void): Promise<string> {
  let index = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => answer(socket, index++));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return 'resolved';
  const { name, code, attempts } = error as Error & { code?: string; attempts?: number };
  return `${name} ${code ?? ''}, ${attempts ?? '?'} attempt(s)`;
}

async function time(call: () => Promise<unknown>): Promise<Outcome> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`still running at ${CAP / 1000} s`), CAP);
  });
  const what = await Promise.race([call().then(() => 'resolved', describe), cap]);
  clearTimeout(timer);
  return { ms: performance.now() - started, what };
}

async function withTokenEndpoint(
  token: (response: ServerResponse) => void,
  run: (api: ReturnType<typeof createClient>) => Promise<Outcome>,
) {
  const tokens = await http(token);
  const api = await http((response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"ok":true}');
  });
  const grant = clientCredentials({ tokenURL: `${tokens.url}/token`, clientId: 'app', clientSecret: 's' });
  const client = createClient({ baseURL: api.url, auth: { grant } });
  const outcome = await run(client);
  outcome.tokenRequests = tokens.count();
  void client.close();
  return outcome;
}

const scenarios: [string, () => Promise<Outcome>][] = [
  [
    'token endpoint never answers, timeout 300',
    () =>
      withTokenEndpoint(
        () => {},
        (api) => time(() => api.get('x', { timeout: 300 })),
      ),
  ],
  [
    'token endpoint never answers, deadline 2000',
    () =>
      withTokenEndpoint(
        () => {},
        (api) => time(() => api.get('x', { deadline: 2000 })),
      ),
  ],
  [
    'holder slower than 20 waiters (token after 5 s), deadline 2000: slowest waiter',
    () =>
      withTokenEndpoint(
        (response) => {
          setTimeout(() => {
            response.writeHead(200, { 'content-type': 'application/json' });
            response.end('{"access_token":"t","token_type":"Bearer","expires_in":3600}');
          }, 5000);
        },
        async (api) => {
          const all = await Promise.all(Array.from({ length: 20 }, () => time(() => api.get('x', { deadline: 2000 }))));
          return all.reduce((a, b) => (a.ms >= b.ms ? a : b));
        },
      ),
  ],
  [
    '502 HTML token endpoint, defaults',
    () =>
      withTokenEndpoint(
        (response) => {
          response.writeHead(502, { 'content-type': 'text/html' });
          response.end('<html>Bad Gateway</html>');
        },
        (api) => time(() => api.get('x')),
      ),
  ],
  ...(['undici', 'fetch'] as const).flatMap((transport): [string, () => Promise<Outcome>][] => [
    ...[1500, 6000].map((timeout): [string, () => Promise<Outcome>] => [
      `${transport}: body drips 1 byte/s, timeout ${timeout}, retry 0`,
      async () => {
        const url = await raw((socket) => {
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n');
          const timer = setInterval(() => socket.write('x'), 1000);
          socket.on('close', () => clearInterval(timer));
        });
        const api = createClient({ baseURL: url, transport });
        return time(() => api.get('x', { timeout, retry: 0 }));
      },
    ]),
    [
      `${transport}: reset after 20 of 100 body bytes, then a good answer (GET)`,
      async () => {
        const url = await raw((socket, index) => {
          if (index === 0) {
            socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n${'x'.repeat(20)}`);
            setTimeout(() => socket.destroy(), 20);
          } else socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
        });
        const api = createClient({ baseURL: url, transport });
        return time(() => api.get('x', { responseType: 'text' }));
      },
    ],
    [
      `${transport}: connection refused, POST`,
      async () => {
        const server = createServer();
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const { port } = server.address() as AddressInfo;
        await new Promise<void>((resolve) => server.close(() => resolve()));
        const api = createClient({ baseURL: `http://127.0.0.1:${port}`, transport });
        return time(() => api.post('x', { n: 1 }));
      },
    ],
    [
      `${transport}: garbage status line, GET`,
      async () => {
        const url = await raw((socket) => socket.end('HELLO WORLD\r\n\r\n'));
        const api = createClient({ baseURL: url, transport });
        return time(() => api.get('x'));
      },
    ],
  ]),
];

console.log('| scenario | time to the error | error | token requests |');
console.log('|---|---:|---|---:|');
for (const [name, run] of scenarios) {
  const result = await run();
  const seconds = result.what.startsWith('still running') ? `> ${CAP / 1000} s` : `${(result.ms / 1000).toFixed(2)} s`;
  console.log(`| ${name} | ${seconds} | ${result.what} | ${result.tokenRequests ?? ''} |`);
}
for (const close of closers) close();
process.exit(0);
