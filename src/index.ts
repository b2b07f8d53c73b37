export type { AuthControl, AuthOptions } from './auth-setup.js';
export { canResend } from './body.js';
export type { ChainOptions } from './chain.js';
export {
  type ClientOptions,
  createClient,
  type QueryValue,
  type RequestOptions,
  type ResponseType,
  SluiceClient,
  type SluiceResponse,
} from './client.js';
export { compose, instrument } from './compose.js';
export { apiKey, basicAuth, type CookieSessionOptions, cookieSession, staticToken } from './credentials.js';
export {
  AbortError,
  AuthError,
  BadRequestError,
  BodyNotReplayableError,
  ClosedError,
  ConfigError,
  ConflictError,
  ForbiddenError,
  HttpError,
  httpErrorFor,
  isHttpError,
  isSluiceError,
  NetworkError,
  NotFoundError,
  ParseError,
  RateLimitError,
  ServerError,
  ServiceUnavailableError,
  SluiceError,
  StoreUnavailableError,
  TimeoutError,
  UnauthorizedError,
} from './errors.js';
export { createFetch, toWebResponse } from './fetch.js';
export {
  type CustomGrantOptions,
  clientCredentials,
  customGrant,
  type Grant,
  type GrantContext,
  type Placement,
  passwordGrant,
  refreshTokenGrant,
  type StaticCredential,
} from './grants.js';
export { parseJson, toSluiceError } from './normalize.js';
export { type NextPage, nextLink, type PaginateOptions } from './paginate.js';
export { isSecretName, REDACTED, redactHeaders, redactText, redactUrl, redactValue } from './redact.js';
export {
  type AttemptTimeout,
  type BodyFactory,
  type CallOptions,
  type CallState,
  HttpRequest,
  type HttpRequestInit,
  isReplayable,
  type RequestBody,
} from './request.js';
export { type BodySource, bytesSource, HttpResponse, type HttpResponseInit } from './response.js';
export type { AcquireOptions, Lock, LockHandle, TokenStore } from './store.js';
export { createTokenFetch, type TokenFetch, type TokenFetchOptions } from './token-fetch.js';
export { parseTokenResponse, type TokenInput, type TokenSet, toTokenSet } from './token-set.js';
export { TokenManager, type TokenManagerOptions, tokenKey } from './tokens.js';
export {
  attemptSignal,
  type FetchTransportOptions,
  fetchTransport,
  type TlsOptions,
  type UndiciTransportOptions,
  undiciTransport,
} from './transport.js';
export type { EventSink, HeadersInput, Logger, Middleware, Next, SluiceEvent, Transport } from './types.js';
