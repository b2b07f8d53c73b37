/**
 * A ThoughtSpot REST API v2.0 look-alike: full-access tokens, cookie session login and a metadata search,
 * every call wanting `X-Requested-By`. Optionally rotates the JSESSIONID cookie every N cookie calls.
 */
import { createServer } from 'node:http';
import { json, listen, parseJson, randomId, readBody, urlOf } from './http.js';

/** Options of {@link startThoughtSpot}. */
export interface ThoughtSpotOptions {
  /** @default 'tsadmin' */
  username?: string;
  /** @default 'ts-password' */
  password?: string;
  /** Accepted as `secret_key` in place of a password (trusted authentication). @default 'ts-secret-key' */
  secretKey?: string;
  /** Token lifetime when the request names none. @default 300 */
  validitySeconds?: number;
  /** Answer every Nth successful cookie-authenticated call with a new JSESSIONID; the old one dies. */
  rotateSessionEvery?: number;
}

/** Starts the mock ThoughtSpot on 127.0.0.1 and an ephemeral port. */
export async function startThoughtSpot(options: ThoughtSpotOptions = {}) {
  const {
    username = 'tsadmin',
    password = 'ts-password',
    secretKey = 'ts-secret-key',
    validitySeconds = 300,
    rotateSessionEvery,
  } = options;
  const counts = { tokenRequests: 0, logins: 0, apiCalls: 0, unauthorized: 0, missingRequestedBy: 0 };
  let lastTokenBody: Record<string, unknown> | undefined;
  const tokens = new Map<string, number>();
  const sessions = new Set<string>();
  let cookieCalls = 0;

  function credentialsOk(input: Record<string, unknown>, allowSecret: boolean): boolean {
    if (input.username !== username) return false;
    if (typeof input.password === 'string') return input.password === password;
    return allowSecret && typeof input.secret_key === 'string' && input.secret_key === secretKey;
  }

  const server = createServer(async (request, response) => {
    const text = await readBody(request);
    const { pathname } = urlOf(request);
    if (request.headers['x-requested-by'] === undefined) {
      counts.missingRequestedBy++;
      json(response, 400, { error: { message: 'X-Requested-By header is required' } });
      return;
    }
    if (request.method === 'POST' && pathname === '/api/rest/2.0/auth/token/full') {
      counts.tokenRequests++;
      const input = parseJson(text);
      lastTokenBody = input;
      if (!credentialsOk(input, true)) {
        json(response, 401, { error: { message: 'Invalid credentials' } });
        return;
      }
      const validity = typeof input.validity_time_in_sec === 'number' ? input.validity_time_in_sec : validitySeconds;
      const token = randomId(24);
      const now = Date.now();
      tokens.set(token, now + validity * 1000);
      json(response, 200, {
        token,
        org: { id: typeof input.org_id === 'number' ? input.org_id : 0 },
        user: { name: username },
        creation_time_in_millis: now,
        expiration_time_in_millis: now + validity * 1000,
        valid_for_username: username,
        valid_for_user_id: 'user-0001',
      });
      return;
    }
    if (request.method === 'POST' && pathname === '/api/rest/2.0/auth/session/login') {
      counts.logins++;
      if (!credentialsOk(parseJson(text), false)) {
        json(response, 401, { error: { message: 'Invalid credentials' } });
        return;
      }
      const session = randomId(16);
      sessions.add(session);
      response.writeHead(204, {
        'set-cookie': [`JSESSIONID=${session}; Path=/; HttpOnly`, `clientId=${randomId(8)}; Path=/`],
      });
      response.end();
      return;
    }
    if (request.method === 'POST' && pathname === '/api/rest/2.0/metadata/search') {
      const header = request.headers.authorization ?? '';
      const bearer = header.startsWith('Bearer ') ? header.slice(7) : undefined;
      const expiresAt = bearer === undefined ? undefined : tokens.get(bearer);
      const session = /(?:^|;\s*)JSESSIONID=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
      const headers: Record<string, string> = {};
      if (expiresAt !== undefined && expiresAt > Date.now()) {
        // Bearer authentication: nothing more to do.
      } else if (session !== undefined && sessions.has(session)) {
        cookieCalls++;
        if (rotateSessionEvery !== undefined && rotateSessionEvery > 0 && cookieCalls % rotateSessionEvery === 0) {
          sessions.delete(session);
          const next = randomId(16);
          sessions.add(next);
          headers['set-cookie'] = `JSESSIONID=${next}; Path=/; HttpOnly`;
        }
      } else {
        counts.unauthorized++;
        json(response, 401, { error: { message: 'Unauthorized' } });
        return;
      }
      counts.apiCalls++;
      json(response, 200, [{ metadata_id: 'f3b2c1d0-0000-4000-8000-000000000001', metadata_name: 'Sales' }], headers);
      return;
    }
    json(response, 404, { error: { message: 'Not found' } });
  });
  const { url, close } = await listen(server);
  return {
    url,
    /** Token requests received, good or bad. */
    get tokenRequests() {
      return counts.tokenRequests;
    },
    /** Session logins received, good or bad. */
    get logins() {
      return counts.logins;
    },
    /** Successful metadata calls. */
    get apiCalls() {
      return counts.apiCalls;
    },
    /** Metadata calls refused 401. */
    get unauthorized() {
      return counts.unauthorized;
    },
    /** Requests refused 400 for lacking `X-Requested-By`. */
    get missingRequestedBy() {
      return counts.missingRequestedBy;
    },
    /** The parsed JSON body of the last token request. */
    get lastTokenBody() {
      return lastTokenBody;
    },
    close,
  };
}

/** A running mock ThoughtSpot. */
export type ThoughtSpotMock = Awaited<ReturnType<typeof startThoughtSpot>>;
