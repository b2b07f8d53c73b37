/**
 * `sluice/testing`: local servers for your own tests (vitest, jest, node:test), on 127.0.0.1 and
 * ephemeral ports. An OAuth 2.0 token endpoint (client credentials, password, refresh with rotation and
 * reuse detection, revoke-all, latency, injected answers, lost responses) and an API that checks its
 * tokens and can be told to answer 401 storms, 429/503 sequences, slow or cut bodies. Both count what
 * they see, for assertions.
 */
export {
  type ApiFault,
  type ApiServer,
  type ApiServerOptions,
  type AuthServer,
  type AuthServerOptions,
  listen,
  startApiServer,
  startAuthServer,
  type TokenOverride,
} from './servers.js';
