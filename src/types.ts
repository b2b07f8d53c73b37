import type { SluiceError } from './errors.js';
import type { HttpRequest } from './request.js';
import type { HttpResponse } from './response.js';

/** Sends one request. Calling it again re-issues the request. */
export type Next = (request: HttpRequest) => Promise<HttpResponse>;

/** May replace the request, call `next` zero or more times, or replace the response. */
export type Middleware = (request: HttpRequest, next: Next) => Promise<HttpResponse>;

/** The end of the chain: puts a request on the wire. */
export interface Transport {
  readonly send: Next;
  /** Closes pooled connections; in-flight requests finish first. */
  close(): Promise<void>;
}

interface EventBase {
  requestId: string;
  method: string;
  /** Redacted. */
  url: string;
}

/** One structured event stream: logging and metrics both consume it. */
export type SluiceEvent =
  | (EventBase & {
      type: 'attempt';
      attempt: number;
      status?: number;
      durationMs: number;
      error?: SluiceError;
      /** The server's `x-request-id`, when it sent one. */
      responseRequestId?: string | undefined;
    })
  | (EventBase & { type: 'retry'; attempt: number; reason: string; delayMs: number })
  | (EventBase & { type: 'retry-skipped'; attempt: number; reason: string })
  | (EventBase & { type: 'redirect'; status: number; location: string; crossOrigin: boolean })
  | (EventBase & { type: 'reissue'; reason: string; generation: number })
  | {
      type: 'token';
      action:
        | 'obtained'
        | 'refresh-started'
        | 'refresh-joined'
        | 'lock-wait'
        | 'lock-acquired'
        | 'stored'
        | 'loaded'
        | 'failed'
        | 'invalidated'
        | 'store-unavailable'
        | 'store-recovered'
        | 'store-entry-ignored'
        | 'store-write-failed'
        | 'refresh-token-lost'
        | 'renew-refused'
        | 'rotated'
        | 'rate-limited'
        | 'lock-lost'
        | 'requesting'
        | 'received';
      key: string;
      generation?: number | undefined;
      durationMs?: number;
      reason?: string;
      error?: SluiceError;
    };

export type EventSink = (event: SluiceEvent) => void;

/** Satisfied by pino, console and winston. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Headers as you pass them: a Headers object, a plain record, or name/value pairs (no DOM lib needed). */
export type HeadersInput = Headers | Record<string, string> | readonly (readonly [string, string])[];
