export type { AuthControl, AuthOptions } from './auth-setup.js';
export type { ChainOptions } from './chain.js';
export {
  type AuthenticatedClient,
  type ClientOptions,
  createClient,
  type QueryValue,
  type RequestOptions,
  type ResponseType,
  SluiceClient,
  type SluiceResponse,
} from './client.js';
export { compose } from './compose.js';
export {
  apiKey,
  basicAuth,
  type CookieSessionOptions,
  cookieSession,
  staticToken,
} from './credentials.js';
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
export { type NextPage, nextLink, type PaginateOptions } from './paginate.js';
export {
  isSecretName,
  REDACTED,
  redactHeaders,
  redactText,
  redactUrl,
  redactValue,
} from './redact.js';
export {
  type AttemptTimeout,
  type BodyFactory,
  type CallOptions,
  type CallState,
  HttpRequest,
  type HttpRequestInit,
  type RequestBody,
} from './request.js';
export { type BodySource, HttpResponse, type HttpResponseInit } from './response.js';
export type {
  AcquireOptions,
  Lock,
  LockHandle,
  TokenStore,
} from './store.js';
export type { TokenFetch } from './token-fetch.js';
export type { TokenInput, TokenSet } from './token-set.js';
export {
  type FetchTransportOptions,
  fetchTransport,
  type TlsOptions,
  type UndiciTransportOptions,
  undiciTransport,
} from './transport.js';
export type {
  EventSink,
  HeadersInput,
  Logger,
  Middleware,
  Next,
  SluiceEvent,
  Transport,
} from './types.js';
