import { createHash } from 'node:crypto';
import { AbortError, AuthError, ConfigError, SluiceError, StoreUnavailableError } from './errors.js';
import type { Grant, GrantContext } from './grants.js';
import type { Lock, TokenStore } from './store.js';
import { mayHaveBeenSent, type TokenFetch } from './token-fetch.js';
import { sealed, type TokenInput, type TokenSet, toTokenSet } from './token-set.js';
import type { EventSink, SluiceEvent } from './types.js';

export interface TokenManagerOptions {
  grant: Grant;
  store: TokenStore;
  lock: Lock;
  /** Token requests: retried on network errors and 5xx. */
  fetch: TokenFetch;
  /** Refresh-token requests: retried only when surely not sent, so a refresh token is never sent twice. */
  refreshFetch?: TokenFetch;
  events?: () => EventSink | undefined;
  /** Refresh this long before expiry, in ms (at most a fifth of the token's lifetime). @default 60000 */
  skew?: number;
  /** Up to this much extra skew (at most a tenth of the lifetime), at random per token and process. @default 30000 */
  jitter?: number;
  /** Lifetime assumed when a token response has no `expires_in`, in ms. @default 3600000 */
  defaultLifetime?: number;
  /** How long a refresh lock lives if its holder dies, in ms. @default 10000 */
  lockTtl?: number;
  /** How long to wait for another holder's refresh, in ms. @default 20000 */
  lockWait?: number;
  /** How long a stored entry with a refresh token is kept, in ms. @default 30 days */
  refreshTokenTtl?: number;
  /** Prefix of the store key. @default 'sluice:token:' */
  keyPrefix?: string;
  now?: () => number;
  random?: () => number;
}

interface StoredEntry {
  v: 1;
  accessToken: string;
  tokenType: string;
  expiresAt: number;
  refreshToken?: string | undefined;
  scope?: string | undefined;
  generation: number;
}

/** The store key for a grant: a hash of its identity, so that no secret and no raw id appears in it. */
export function tokenKey(grant: Grant, prefix = 'sluice:token:'): string {
  const identity = Object.entries(grant.identity)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));
  return prefix + createHash('sha256').update(JSON.stringify(identity)).digest('base64url').slice(0, 32);
}

/** Resolves with `promise`, or rejects with `AbortError` when `signal` aborts first; `promise` goes on. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new AbortError({ cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortError({ cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** A stored token that another holder wrote, found while handling a failure. */
class Adopt {
  readonly tokens: TokenSet;
  constructor(tokens: TokenSet) {
    this.tokens = tokens;
  }
}

/**
 * Keeps one credential current: memory first (the hot path reads nothing else), the store at start,
 * near expiry and after a 401. One refresh at a time per process (single flight) and, through the
 * lock, one across every process sharing the store.
 */
export class TokenManager {
  readonly key: string;
  readonly grant: Grant;
  readonly #o: Required<Omit<TokenManagerOptions, 'events' | 'refreshFetch'>> & Pick<TokenManagerOptions, 'events'>;
  readonly #refreshFetch: TokenFetch;
  #memory: TokenSet | undefined;
  #refreshAt = 0;
  #inFlight: Promise<TokenSet> | undefined;
  #storeDown = false;
  #listeners: ((tokens: TokenSet) => void)[] = [];
  /** Store reads, counted so tests and benchmarks can prove the hot path makes none. */
  storeReads = 0;

  constructor(options: TokenManagerOptions) {
    const o = {
      skew: 60_000,
      jitter: 30_000,
      defaultLifetime: 3_600_000,
      lockTtl: 10_000,
      lockWait: 20_000,
      refreshTokenTtl: 30 * 24 * 3_600_000,
      keyPrefix: 'sluice:token:',
      now: Date.now,
      random: Math.random,
      ...options,
    };
    for (const name of ['skew', 'jitter', 'defaultLifetime', 'lockTtl', 'lockWait', 'refreshTokenTtl'] as const) {
      const value = o[name];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new ConfigError(`auth.${name} must be a non-negative number of milliseconds, got ${String(value)}`);
      }
    }
    if (!o.grant || typeof o.grant.obtain !== 'function')
      throw new ConfigError('auth.grant must be a grant, e.g. clientCredentials({...})');
    this.#o = o;
    this.grant = o.grant;
    this.#refreshFetch = options.refreshFetch ?? options.fetch;
    this.key = tokenKey(o.grant, o.keyPrefix);
  }

  /** The token in memory if it is still good to send, without any I/O; starts a background refresh near expiry. */
  current(): TokenSet | undefined {
    const tokens = this.#memory;
    if (tokens === undefined) return undefined;
    const now = this.#o.now();
    if (now < this.#refreshAt) return tokens;
    if (now >= tokens.expiresAt - 1000) return undefined;
    if (!this.#inFlight) this.#refresh(tokens.generation, 'expiring').catch(() => {});
    return tokens;
  }

  /** A token good to send: from memory, the store, or a new one. A caller's abort does not cancel a shared refresh. */
  token(signal?: AbortSignal): Promise<TokenSet> {
    const tokens = this.current();
    if (tokens) return Promise.resolve(tokens);
    return abortable(this.#refresh(this.#memory?.generation, 'expired'), signal);
  }

  /**
   * The API refused a request sent with `generation`. If the token has already moved on, the current one
   * is returned; otherwise this joins, or starts, the one refresh.
   */
  rejected(generation: number | undefined, signal?: AbortSignal): Promise<TokenSet> {
    const tokens = this.#memory;
    if (
      tokens &&
      generation !== undefined &&
      tokens.generation > generation &&
      this.#o.now() < tokens.expiresAt - 1000
    ) {
      return Promise.resolve(tokens);
    }
    return abortable(this.#refresh(generation ?? tokens?.generation, 'rejected'), signal);
  }

  /** Forgets the current token: the next request gets a new one (the stored refresh token is kept). */
  invalidate(): void {
    const tokens = this.#memory;
    this.#refreshAt = 0;
    if (tokens) this.#memory = sealed({ ...tokens, expiresAt: 0 });
    this.#emit({ action: 'invalidated', generation: tokens?.generation });
  }

  onTokenChange(listener: (tokens: TokenSet) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((item) => item !== listener);
    };
  }

  #emit(event: Omit<Extract<SluiceEvent, { type: 'token' }>, 'type' | 'key'>): void {
    this.#o.events?.()?.({ type: 'token', key: this.key, ...event });
  }

  #refresh(failed: number | undefined, reason: string): Promise<TokenSet> {
    if (this.#inFlight) {
      this.#emit({ action: 'refresh-joined', reason });
      return this.#inFlight;
    }
    const started = this.#o.now();
    this.#emit({ action: 'refresh-started', reason, generation: failed });
    const flight = this.#run(failed).then(
      (tokens) => tokens,
      (error: unknown) => {
        const failure = error instanceof SluiceError ? error : new AuthError('token refresh failed', { cause: error });
        this.#emit({ action: 'failed', error: failure, durationMs: this.#o.now() - started });
        throw failure;
      },
    );
    this.#inFlight = flight.finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight.catch(() => {});
    return this.#inFlight;
  }

  /** True when `tokens` can be used instead of refreshing away from generation `failed`. */
  #usable(tokens: TokenSet | undefined, failed: number | undefined): boolean {
    if (!tokens || this.#o.now() >= tokens.expiresAt - 1000) return false;
    return failed === undefined || tokens.generation > failed;
  }

  async #run(failed: number | undefined): Promise<TokenSet> {
    let stored: TokenSet | undefined;
    try {
      stored = await this.#read();
    } catch (error) {
      return this.#offline(error);
    }
    if (stored && this.#usable(stored, failed)) return this.#adopt(stored, 'loaded');

    const { lock } = this.#o;
    const lockKey = `${this.key}:lock`;
    const waitStarted = this.#o.now();
    const giveUpAt = waitStarted + this.#o.lockWait;
    let handle: Awaited<ReturnType<Lock['acquire']>>;
    this.#emit({ action: 'lock-wait' });
    // Wait for the lock in short turns and look at the store between them: when another holder has
    // written the new generation, take it from the store without queueing for the lock at all.
    for (let turn = 0; ; turn++) {
      const remaining = giveUpAt - this.#o.now();
      try {
        handle = await lock.acquire(lockKey, {
          ttlMs: this.#o.lockTtl,
          waitMs: Math.max(0, Math.min(remaining, 50 * 2 ** Math.min(turn, 2))),
        });
        if (handle) break;
        stored = await this.#read();
      } catch (error) {
        return this.#offline(error);
      }
      if (stored && this.#usable(stored, failed)) return this.#adopt(stored, 'loaded');
      if (this.#o.now() >= giveUpAt) {
        throw new StoreUnavailableError(`no refresh within ${this.#o.lockWait} ms: the refresh lock stayed taken`);
      }
    }
    this.#emit({ action: 'lock-acquired', durationMs: this.#o.now() - waitStarted });
    // Keep the lock while this refresh is alive, however slow the token endpoint: a second holder
    // would otherwise present the same refresh token. If this process dies, the beats stop and the
    // lock expires within one TTL.
    const lease = handle;
    const beat = lease.extend
      ? setInterval(
          () => {
            void lease.extend?.(this.#o.lockTtl).catch(() => false);
          },
          Math.min(2 ** 31 - 1, Math.max(50, this.#o.lockTtl / 3)),
        )
      : undefined;
    beat?.unref();
    try {
      stored = await this.#read();
      if (stored && this.#usable(stored, failed)) return this.#adopt(stored, 'loaded');
      const base = newest(stored, this.#memory);
      const result = await this.#obtain(base, true);
      if (result instanceof Adopt) return this.#adopt(result.tokens, 'loaded');
      const generation = Math.max(stored?.generation ?? 0, this.#memory?.generation ?? 0, failed ?? 0) + 1;
      const tokens = toTokenSet(
        { ...result, refreshToken: result.refreshToken ?? base?.refreshToken },
        generation,
        this.#o.defaultLifetime,
        this.#o.now(),
      );
      if (!(await handle.isHeld())) {
        // Our lock expired mid-refresh: someone else may hold it now, so we must not overwrite the store.
        this.#emit({ action: 'failed', reason: 'refresh lock expired before the write; token kept in memory only' });
        return this.#adopt(tokens, 'obtained');
      }
      await this.#write(tokens);
      return this.#adopt(tokens, 'stored');
    } catch (error) {
      if (error instanceof StoreUnavailableError) return this.#offline(error);
      throw error;
    } finally {
      clearInterval(beat);
      await handle.release();
    }
  }

  /** Gets new tokens: the refresh token when there is one, else (or when it fails) the primary grant. */
  async #obtain(base: TokenSet | undefined, shared: boolean): Promise<TokenInput | Adopt> {
    const { grant } = this.#o;
    const context = (fetch: TokenFetch): GrantContext => ({ fetch });
    if (base?.refreshToken && grant.refresh && shared) {
      try {
        return await grant.refresh(context(this.#refreshFetch), base);
      } catch (error) {
        if (mayHaveBeenSent(error)) {
          // The server may have rotated the refresh token without our hearing back: never send it again.
          if (grant.canReauthenticate) return grant.obtain(context(this.#o.fetch));
          throw new AuthError(
            'the refresh request got no answer and its refresh token may be spent; re-authentication is needed',
            {
              code: 'AUTH_REAUTHENTICATE',
              cause: error,
            },
          );
        }
        if (error instanceof AuthError && error.oauthError === 'invalid_grant') {
          // Another process may have rotated it a moment ago.
          const again = await this.#read();
          if (again && again.generation > base.generation && this.#usable(again, undefined)) return new Adopt(again);
        }
        if (error instanceof AuthError && !error.retryable && grant.canReauthenticate) {
          return grant.obtain(context(this.#o.fetch));
        }
        throw error;
      }
    }
    return grant.obtain(context(this.#o.fetch));
  }

  /** The store is unreachable: go on locally if the grant can re-authenticate on its own, else fail typed. */
  async #offline(error: unknown): Promise<TokenSet> {
    const failure =
      error instanceof StoreUnavailableError
        ? error
        : error instanceof SluiceError
          ? error
          : new StoreUnavailableError('token store failed', { cause: error });
    if (!(failure instanceof StoreUnavailableError)) throw failure;
    if (!this.#storeDown) {
      this.#storeDown = true;
      this.#emit({ action: 'store-unavailable', error: failure, reason: 'going on from process memory' });
    }
    if (!this.#o.grant.canReauthenticate) throw failure;
    const input = await this.#obtain(undefined, false);
    if (input instanceof Adopt) return this.#adopt(input.tokens, 'loaded');
    const generation = (this.#memory?.generation ?? 0) + 1;
    return this.#adopt(toTokenSet(input, generation, this.#o.defaultLifetime, this.#o.now()), 'obtained');
  }

  async #read(): Promise<TokenSet | undefined> {
    this.storeReads++;
    const raw = await this.#o.store.get(this.key);
    if (this.#storeDown) {
      this.#storeDown = false;
      this.#emit({ action: 'store-recovered' });
    }
    if (raw === undefined || raw === null) return undefined;
    const entry = raw as Partial<StoredEntry>;
    try {
      if (entry.v !== 1 || typeof entry.generation !== 'number' || !Number.isSafeInteger(entry.generation))
        throw new Error('shape');
      return toTokenSet(
        {
          accessToken: entry.accessToken as string,
          tokenType: entry.tokenType,
          expiresAt: entry.expiresAt,
          refreshToken: entry.refreshToken,
          scope: entry.scope,
        },
        entry.generation,
        this.#o.defaultLifetime,
        Math.min(this.#o.now(), typeof entry.expiresAt === 'number' ? entry.expiresAt : 0),
      );
    } catch {
      this.#emit({
        action: 'store-entry-ignored',
        reason: 'stored entry is corrupt or of another version; it will be replaced',
      });
      return undefined;
    }
  }

  async #write(tokens: TokenSet): Promise<void> {
    const entry: StoredEntry = {
      v: 1,
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      expiresAt: tokens.expiresAt,
      refreshToken: tokens.refreshToken,
      scope: tokens.scope,
      generation: tokens.generation,
    };
    const lifetime = tokens.expiresAt - this.#o.now();
    const ttl = tokens.refreshToken ? Math.max(lifetime, this.#o.refreshTokenTtl) : lifetime + 60_000;
    await this.#o.store.set(this.key, entry, Math.max(1000, ttl));
  }

  #adopt(tokens: TokenSet, action: 'loaded' | 'stored' | 'obtained'): TokenSet {
    const previous = this.#memory;
    const now = this.#o.now();
    const lifetime = Math.max(0, tokens.expiresAt - now);
    // Short-lived tokens scale both down, so that a 5-second token is not refreshed all the time and
    // processes still spread their refreshes out.
    const window = Math.min(this.#o.skew, lifetime * 0.2) + this.#o.random() * Math.min(this.#o.jitter, lifetime * 0.1);
    this.#memory = tokens;
    this.#refreshAt = tokens.expiresAt - window;
    if (previous?.generation !== tokens.generation || previous.accessToken !== tokens.accessToken) {
      this.#emit({ action, generation: tokens.generation });
      for (const listener of this.#listeners) listener(tokens);
    }
    return tokens;
  }
}

function newest(a: TokenSet | undefined, b: TokenSet | undefined): TokenSet | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.generation >= b.generation ? a : b;
}
