import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';

/** One request as the server received it, body fully read. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** `Date.now()` when the body had been read. */
  at: number;
}

export type Handler = (request: Seen, response: ServerResponse, index: number) => void | Promise<void>;

export interface TestServer {
  /** `http://127.0.0.1:<port>`, no trailing slash: `${server.url}/path`. */
  readonly url: string;
  /** The same as `url`: scheme, host and port. */
  readonly origin: string;
  readonly port: number;
  /** Every request received so far, in order. */
  readonly seen: Seen[];
  /** How many requests the server has received. */
  readonly requests: number;
  /** Stops listening and destroys every open socket, idle keep-alive ones included. */
  close(): Promise<void>;
}

/**
 * A node:http server on 127.0.0.1, ephemeral port. `handler` gets each request (body already read) and
 * its index; every request is recorded in `seen`. A handler that throws destroys the socket.
 */
export async function startServer(handler: Handler): Promise<TestServer> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry: Seen = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
        at: Date.now(),
      };
      seen.push(entry);
      void Promise.resolve()
        .then(() => handler(entry, response, seen.length - 1))
        .catch(() => response.destroy());
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    origin: url,
    port,
    seen,
    get requests() {
      return seen.length;
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })),
  };
}

/** Answers with a JSON body. */
export function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(text);
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released): connecting is refused. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts servers and closes them after each test: `const servers = serverPool(); afterEach(servers.closeAll)`.
 */
export function serverPool() {
  const open: TestServer[] = [];
  return {
    async start(handler: Handler): Promise<TestServer> {
      const server = await startServer(handler);
      open.push(server);
      return server;
    },
    async closeAll(): Promise<void> {
      await Promise.all(open.splice(0).map((server) => server.close()));
    },
  };
}

/** Runs `answer` after `ms`, unless the connection is gone by then (the client gave up, or the server closed). */
export function answerAfter(response: ServerResponse, ms: number, answer: () => void): void {
  const timer = setTimeout(answer, ms);
  response.on('close', () => clearTimeout(timer));
}

export interface RawServer {
  readonly url: string;
  /** Requests received (counted at their first bytes). */
  readonly requests: number;
  close(): Promise<void>;
}

/**
 * A bare TCP server on 127.0.0.1 that answers each request's first bytes with `answer(socket, index)`:
 * for replies node:http will not write (a garbage status line, a bad chunk, a drip, a reset mid-body).
 */
export async function rawServer(answer: (socket: Socket, index: number) => void): Promise<RawServer> {
  let requests = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => answer(socket, requests++));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
