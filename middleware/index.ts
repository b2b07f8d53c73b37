export { type AuthMiddlewareOptions, auth, originGuard } from './auth.js';
export { type ErrorsOptions, errors, toHttpError } from './errors.js';
export { type LoggingOptions, logEvents, logging } from './logging.js';
export { type RedirectsOptions, redirects } from './redirects.js';
export { parseWwwAuthenticate, type RefreshOptions, refresh } from './refresh.js';
export { type RetryDecision, type RetryOptions, retry, retryAfterMs } from './retry.js';
export { type TimeoutOptions, timeout } from './timeout.js';
