/**
 * The pieces Sluice is built from, for custom transports, stores and tests: `sluice/internals`.
 * No stability promise: these may change in any release.
 */
export { canResend } from './body.js';
export { instrument } from './compose.js';
export { parseJson, toSluiceError } from './normalize.js';
export { isReplayable } from './request.js';
export { bytesSource } from './response.js';
export { clampDelay, MAX_TIMER_MS } from './timers.js';
export { createTokenFetch, type TokenFetchOptions } from './token-fetch.js';
export { parseTokenResponse, toTokenSet } from './token-set.js';
export { TokenManager, type TokenManagerOptions, tokenKey } from './tokens.js';
export { attemptSignal } from './transport.js';
