/**
 * A HashiCorp Vault look-alike: AppRole login, token self-renewal bounded by a max TTL, and KV v2 reads.
 * Lifetimes are seconds, kept short so tests can watch a token die.
 */
import { createServer } from 'node:http';
import { json, listen, parseJson, randomId, readBody, urlOf } from './http.js';

/** Options of {@link startVault}. */
export interface VaultOptions {
  /** @default 'role-1' */
  roleId?: string;
  /** @default 'secret-1' */
  secretId?: string;
  /** Lease granted by login and by each renewal, in seconds. @default 2 */
  leaseSeconds?: number;
  /** A token never lives past this many seconds after login. @default 6 */
  maxTtlSeconds?: number;
}

interface VaultToken {
  accessor: string;
  expiresAt: number;
  maxExpiresAt: number;
}

/** Starts the mock Vault on 127.0.0.1 and an ephemeral port. */
export async function startVault(options: VaultOptions = {}) {
  const { roleId = 'role-1', secretId = 'secret-1', leaseSeconds = 2, maxTtlSeconds = 6 } = options;
  const counts = { logins: 0, renewals: 0, reads: 0, denied: 0 };
  const tokens = new Map<string, VaultToken>();

  function live(header: string | string[] | undefined): [string, VaultToken] | undefined {
    const id = typeof header === 'string' ? header : undefined;
    const token = id === undefined ? undefined : tokens.get(id);
    return id !== undefined && token !== undefined && token.expiresAt > Date.now() ? [id, token] : undefined;
  }

  function authBody(clientToken: string, token: VaultToken, lease: number) {
    return {
      request_id: randomId(8),
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: null,
      warnings: null,
      auth: {
        client_token: clientToken,
        accessor: token.accessor,
        policies: ['default'],
        token_policies: ['default'],
        lease_duration: lease,
        renewable: true,
      },
    };
  }

  const server = createServer(async (request, response) => {
    const text = await readBody(request);
    const { pathname } = urlOf(request);
    if (request.method === 'POST' && pathname === '/v1/auth/approle/login') {
      counts.logins++;
      const input = parseJson(text);
      if (input.role_id !== roleId || input.secret_id !== secretId) {
        json(response, 400, { errors: ['invalid role or secret ID'] });
        return;
      }
      const now = Date.now();
      const clientToken = `hvs.${randomId(12)}`;
      const lease = Math.min(leaseSeconds, maxTtlSeconds);
      const token = { accessor: randomId(8), expiresAt: now + lease * 1000, maxExpiresAt: now + maxTtlSeconds * 1000 };
      tokens.set(clientToken, token);
      json(response, 200, authBody(clientToken, token, lease));
      return;
    }
    if (request.method === 'POST' && pathname === '/v1/auth/token/renew-self') {
      const found = live(request.headers['x-vault-token']);
      const remaining = found ? Math.floor((found[1].maxExpiresAt - Date.now()) / 1000) : 0;
      if (!found || remaining <= 0) {
        if (found) tokens.delete(found[0]);
        counts.denied++;
        json(response, 403, { errors: ['permission denied'] });
        return;
      }
      counts.renewals++;
      const [clientToken, token] = found;
      const lease = Math.min(leaseSeconds, remaining);
      token.expiresAt = Math.min(Date.now() + lease * 1000, token.maxExpiresAt);
      json(response, 200, authBody(clientToken, token, lease));
      return;
    }
    if (request.method === 'GET' && pathname.startsWith('/v1/secret/data/')) {
      if (!live(request.headers['x-vault-token'])) {
        counts.denied++;
        json(response, 403, { errors: ['permission denied'] });
        return;
      }
      counts.reads++;
      json(response, 200, {
        request_id: randomId(8),
        lease_id: '',
        renewable: false,
        lease_duration: 0,
        data: {
          data: { password: 'db-pass' },
          metadata: { created_time: '2024-01-01T00:00:00Z', deletion_time: '', destroyed: false, version: 1 },
        },
        warnings: null,
      });
      return;
    }
    json(response, 404, { errors: [] });
  });
  const { url, close } = await listen(server);
  return {
    url,
    /** Login attempts, good or bad. */
    get logins() {
      return counts.logins;
    },
    /** Successful renewals. */
    get renewals() {
      return counts.renewals;
    },
    /** Successful secret reads. */
    get reads() {
      return counts.reads;
    },
    /** Renewals and reads refused 403. */
    get denied() {
      return counts.denied;
    },
    close,
  };
}

/** A running mock Vault. */
export type VaultMock = Awaited<ReturnType<typeof startVault>>;
