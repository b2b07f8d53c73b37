/**
 * A local OAuth 2.0 token endpoint and a token-checking API, on 127.0.0.1 and ephemeral ports. The demo,
 * the benchmarks and the tests all use them; they count what they see so that claims can be checked.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface AuthServerOptions {
  /** Access token lifetime in seconds. @default 3600 */
  lifetime?: number;
  /** Issue refresh tokens (rotated on every use). @default false */
  refreshTokens?: boolean;
  /** Treat a reused refresh token as an attack: revoke its whole family. @default true */
  reuseDetection?: boolean;
  /** Accepted clients: id -> secret. @default { app: 'app-secret' } */
  clients?: Record<string, string>;
  /** Accepted users: name -> password. @default { alice: 'wonderland' } */
  users?: Record<string, string>;
  /** Milliseconds to wait before answering a token request. @default 0 */
  delay?: number;
  /**
   * Called with each token request's form before it is answered; may wait (tests inject delays here),
   * or answer in its place with a status, headers and a JSON body (tests inject 429s and 503s here).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: hooks that only wait return nothing
  onTokenRequest?: (form: URLSearchParams) => void | TokenOverride | Promise<void | TokenOverride>;
  /**
   * Called after a refresh was committed (the old refresh token is spent, the new one issued); true
   * resets the connection instead of answering: the rotation happened, the client never hears of it.
   */
  dropAnswer?: (form: URLSearchParams) => boolean;
}

export interface TokenOverride {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

interface Issued {
  expiresAt: number;
  family: string;
  scope: string;
  revoked: boolean;
}

/** Listens on 127.0.0.1, an ephemeral port; `close` destroys open sockets and closes the server. */
export function listen(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

export async function startAuthServer(options: AuthServerOptions = {}) {
  const {
    lifetime = 3600,
    refreshTokens = false,
    reuseDetection = true,
    clients = { app: 'app-secret' },
    users = { alice: 'wonderland' },
    delay = 0,
  } = options;
  const counts = { token: 0, refresh: 0, reuse: 0, rejected: 0, login: 0, received: 0 };
  /** Every refresh token presented, in order: a test checks that none appears twice. */
  const presented: string[] = [];
  const access = new Map<string, Issued>();
  const refresh = new Map<string, { family: string; used: boolean; scope: string }>();
  const revokedFamilies = new Set<string>();
  let settings = { lifetime };

  function issue(family: string, scope: string) {
    const accessToken = `at_${randomBytes(12).toString('hex')}`;
    access.set(accessToken, { expiresAt: Date.now() + settings.lifetime * 1000, family, scope, revoked: false });
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: settings.lifetime,
      scope,
    };
    if (refreshTokens) {
      const refreshToken = `rt_${randomBytes(12).toString('hex')}`;
      refresh.set(refreshToken, { family, used: false, scope });
      body.refresh_token = refreshToken;
    }
    return body;
  }

  function clientOf(request: IncomingMessage, form: URLSearchParams): string | undefined {
    const header = request.headers.authorization;
    let id = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    if (header?.startsWith('Basic ')) {
      const [rawId = '', rawSecret = ''] = Buffer.from(header.slice(6), 'base64').toString().split(':');
      id = decodeURIComponent(rawId.replace(/\+/g, ' '));
      secret = decodeURIComponent(rawSecret.replace(/\+/g, ' '));
    }
    return id !== undefined && clients[id] !== undefined && clients[id] === secret ? id : undefined;
  }

  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const url = new URL(request.url ?? '/', 'http://local');
    if (url.pathname === '/auth/token/full' && request.method === 'POST') {
      // A non-OAuth login endpoint: JSON in, { token, expiration_time_in_millis } out.
      counts.login++;
      const input = JSON.parse(body.toString() || '{}') as Record<string, unknown>;
      if (typeof input.username !== 'string' || users[input.username] !== input.password) {
        json(response, 401, { message: 'bad credentials' });
        return;
      }
      const validity = Number(input.validity_time_in_sec ?? settings.lifetime);
      const issued = issue(`login:${String(input.org_id)}`, String(input.org_id ?? ''));
      json(response, 200, { token: issued.access_token, expiration_time_in_millis: Date.now() + validity * 1000 });
      return;
    }
    if (url.pathname === '/login' && request.method === 'POST') {
      counts.login++;
      const issued = issue('cookie', '');
      response.writeHead(204, {
        'set-cookie': `SESSIONID=${String(issued.access_token)}; Path=/; HttpOnly; Max-Age=${settings.lifetime}`,
      });
      response.end();
      return;
    }
    if (url.pathname !== '/oauth/token' || request.method !== 'POST') {
      json(response, 404, { error: 'not_found' });
      return;
    }
    const form = new URLSearchParams(body.toString());
    counts.received++;
    const override = await options.onTokenRequest?.(form);
    if (override) {
      json(response, override.status, override.body ?? { error: 'temporarily_unavailable' }, override.headers);
      return;
    }
    const grant = form.get('grant_type');
    const client = clientOf(request, form);
    if (!client) {
      counts.rejected++;
      json(response, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
      return;
    }
    counts.token++;
    if (grant === 'client_credentials') {
      json(response, 200, issue(`cc:${client}:${randomBytes(4).toString('hex')}`, form.get('scope') ?? ''));
    } else if (grant === 'password') {
      const username = form.get('username') ?? '';
      if (users[username] === undefined || users[username] !== form.get('password')) {
        counts.rejected++;
        json(response, 400, { error: 'invalid_grant', error_description: 'bad user credentials' });
        return;
      }
      json(response, 200, issue(`pw:${username}:${randomBytes(4).toString('hex')}`, form.get('scope') ?? ''));
    } else if (grant === 'refresh_token') {
      counts.refresh++;
      const token = form.get('refresh_token') ?? '';
      presented.push(token);
      const entry = refresh.get(token);
      if (!entry || revokedFamilies.has(entry.family)) {
        counts.rejected++;
        json(response, 400, { error: 'invalid_grant', error_description: 'unknown or revoked refresh token' });
        return;
      }
      if (entry.used) {
        counts.reuse++;
        if (reuseDetection) {
          revokedFamilies.add(entry.family);
          for (const issued of access.values()) if (issued.family === entry.family) issued.revoked = true;
        }
        json(response, 400, { error: 'invalid_grant', error_description: 'refresh token reused' });
        return;
      }
      entry.used = true;
      const issued = issue(entry.family, entry.scope);
      if (options.dropAnswer?.(form)) {
        request.socket.resetAndDestroy();
        return;
      }
      json(response, 200, issued);
    } else {
      json(response, 400, { error: 'unsupported_grant_type' });
    }
  });
  const { url, close } = await listen(server);
  return {
    url,
    tokenURL: `${url}/oauth/token`,
    counts,
    presented,
    /** True when the token was issued here, has not expired and was not revoked. */
    check(token: string): Issued | undefined {
      const issued = access.get(token);
      if (!issued || issued.revoked || revokedFamilies.has(issued.family) || issued.expiresAt <= Date.now())
        return undefined;
      return issued;
    },
    /** Every access and refresh token issued so far: for tests that search output for secrets. */
    issued(): string[] {
      return [...access.keys(), ...refresh.keys()];
    },
    /** Revokes every access token issued so far (refresh tokens stay valid). */
    revokeAll(): void {
      for (const issued of access.values()) issued.revoked = true;
    },
    setLifetime(seconds: number): void {
      settings = { lifetime: seconds };
    },
    close,
  };
}

export type AuthServer = Awaited<ReturnType<typeof startAuthServer>>;

/**
 * One answer the API gives in place of its normal one, in the order queued (`api.inject(...)`), to
 * requests that passed the token check: a status (a 429/503 sequence), a body that arrives slowly, or a
 * body cut short (the connection is destroyed after `cutAfter` of the announced bytes).
 */
export type ApiFault =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  | { slowBody: number; chunks?: number }
  | { cutAfter: number };

export interface ApiServerOptions {
  /** Validates tokens against this auth server. */
  auth: AuthServer;
  /** Share of requests answered 503 (0..1). @default 0 */
  failRate?: number;
  /** Share of requests answered 429 with `Retry-After: retryAfter`. @default 0 */
  throttleRate?: number;
  /** @default 1 */
  retryAfter?: number;
  /** Milliseconds to wait before answering. @default 0 */
  delay?: number;
}

/**
 * GET /items/:id -> { id, name }; POST /echo -> { bytes, sha256, contentType }; GET /whoami -> scope;
 * anything else 404. Every route wants `Authorization: Bearer <token>` or the `SESSIONID` cookie.
 */
export async function startApiServer(options: ApiServerOptions) {
  const counts = { requests: 0, ok: 0, unauthorized: 0, injected503: 0, injected429: 0, injected: 0 };
  const { auth, failRate = 0, throttleRate = 0, retryAfter = 1, delay = 0 } = options;
  const faults: ApiFault[] = [];
  const server = createServer(async (request, response) => {
    counts.requests++;
    const body = await readBody(request);
    const url = new URL(request.url ?? '/', 'http://local');
    const wait = Number(url.searchParams.get('delay') ?? delay);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 10_000)));
    const header = request.headers.authorization ?? '';
    const cookie = /SESSIONID=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
    const token = header.startsWith('Bearer ') ? header.slice(7) : cookie;
    const issued = token ? auth.check(token) : undefined;
    if (!issued) {
      counts.unauthorized++;
      json(response, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
      return;
    }
    const fault = faults.shift();
    if (fault) {
      counts.injected++;
      await answerWith(fault, response);
      return;
    }
    const roll = Math.random();
    if (roll < failRate) {
      counts.injected503++;
      json(response, 503, { error: 'busy' });
      return;
    }
    if (roll < failRate + throttleRate) {
      counts.injected429++;
      json(response, 429, { error: 'slow down' }, { 'retry-after': String(retryAfter) });
      return;
    }
    counts.ok++;
    const item = /^\/items\/([\w-]+)$/.exec(url.pathname);
    if (item && request.method === 'GET') {
      json(response, 200, { id: item[1], name: `item ${item[1]}`, tags: ['a', 'b'] });
    } else if (url.pathname === '/echo') {
      json(response, 200, {
        bytes: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
        contentType: request.headers['content-type'] ?? null,
        method: request.method,
      });
    } else if (url.pathname === '/whoami') {
      json(response, 200, { scope: issued.scope });
    } else {
      json(response, 404, { error: 'not_found' });
    }
  });
  const { url, close } = await listen(server);
  return {
    url,
    counts,
    /** Queues answers for the next authorized requests, e.g. `inject({ status: 503 }, { status: 429, headers: { 'retry-after': '1' } })`. */
    inject(...more: ApiFault[]) {
      faults.push(...more);
    },
    close,
  };
}

async function answerWith(fault: ApiFault, response: ServerResponse): Promise<void> {
  if ('status' in fault) {
    json(response, fault.status, fault.body ?? { error: `injected ${fault.status}` }, fault.headers ?? {});
    return;
  }
  const text = JSON.stringify({ id: 'slow', padding: 'x'.repeat(256) });
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(text.length) });
  if ('cutAfter' in fault) {
    response.write(text.slice(0, fault.cutAfter));
    await new Promise((resolve) => setTimeout(resolve, 20));
    response.destroy();
    return;
  }
  const chunks = Math.max(1, fault.chunks ?? 4);
  const size = Math.ceil(text.length / chunks);
  for (let at = 0; at < text.length && !response.destroyed; at += size) {
    response.write(text.slice(at, at + size));
    await new Promise((resolve) => setTimeout(resolve, fault.slowBody / chunks));
  }
  response.end();
}

export type ApiServer = Awaited<ReturnType<typeof startApiServer>>;
