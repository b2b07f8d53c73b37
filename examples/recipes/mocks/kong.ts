/**
 * A Kong Gateway look-alike in front of an OAuth-protected upstream: the gateway's key-auth plugin wants an
 * `apikey` header, then the upstream checks the bearer token against a local OAuth token server.
 */
import { createServer } from 'node:http';
import { startAuthServer } from 'sluice/testing';
import { json, listen, urlOf } from './http.js';

/** Options of {@link startKongGateway}. */
export interface KongGatewayOptions {
  /** Accepted `apikey` header. @default 'kong-key' */
  apiKey?: string;
}

const clientId = 'orders-client';
const clientSecret = 'orders-secret';

/** Starts the mock gateway and its OAuth token server, both on 127.0.0.1 and ephemeral ports. */
export async function startKongGateway(options: KongGatewayOptions = {}) {
  let apiKey = options.apiKey ?? 'kong-key';
  const auth = await startAuthServer({ clients: { [clientId]: clientSecret } });
  const counts = { gatewayRefusals: 0, upstreamRefusals: 0 };
  const server = createServer((request, response) => {
    request.resume();
    const key = request.headers.apikey;
    if (key === undefined || key !== apiKey) {
      counts.gatewayRefusals++;
      const message = key === undefined ? 'No API key found in request' : 'Invalid authentication credentials';
      json(response, 401, { message }, { 'www-authenticate': 'Key realm="kong"' });
      return;
    }
    const header = request.headers.authorization ?? '';
    const bearer = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!auth.check(bearer)) {
      counts.upstreamRefusals++;
      json(
        response,
        401,
        { error: 'invalid_token' },
        { 'www-authenticate': 'Bearer realm="orders", error="invalid_token"' },
      );
      return;
    }
    if (request.method === 'GET' && urlOf(request).pathname === '/orders') {
      json(response, 200, [{ id: 1, total: 9.5 }]);
      return;
    }
    json(response, 404, { message: 'no Route matched with those values' });
  });
  const gateway = await listen(server);
  return {
    /** The gateway's origin. */
    url: gateway.url,
    /** The OAuth token endpoint (client credentials). */
    tokenURL: auth.tokenURL,
    clientId,
    clientSecret,
    /** Requests refused by the gateway for a missing or wrong `apikey`. */
    get gatewayRefusals() {
      return counts.gatewayRefusals;
    },
    /** Requests refused by the upstream for a bad or expired bearer token. */
    get upstreamRefusals() {
      return counts.upstreamRefusals;
    },
    /** Requests received by the token endpoint. */
    get tokenRequests() {
      return auth.counts.received;
    },
    /** Replaces the accepted `apikey`; the old key is refused from now on. */
    rotateApiKey(newKey: string): void {
      apiKey = newKey;
    },
    /** Revokes every access token issued so far. */
    revokeTokens(): void {
      auth.revokeAll();
    },
    /** Closes the gateway and the token server. */
    async close(): Promise<void> {
      await Promise.all([gateway.close(), auth.close()]);
    },
  };
}

/** A running mock Kong gateway. */
export type KongGatewayMock = Awaited<ReturnType<typeof startKongGateway>>;
