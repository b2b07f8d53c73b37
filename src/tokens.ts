import {
  AbortError,
  AuthError,
  ConfigError,
  NetworkError,
  SluiceError,
  StoreUnavailableError,
  TimeoutError,
} from './errors.js';
import type { Grant } from './grants.js';
import { own } from './own.js';
import { type AttemptTimeout, remainingMs } from './request.js';
import { type Lock, type LockHandle, readCompareWrite, type TokenStore } from './store.js';
import {
  entryTtl,
  nextRevision,
  readEntry,
  type Snapshot,
  type StoredEntry,
  toEntry,
  tokenKey,
} from './token-entry.js';
import { mayHaveBeenSent, notProcessed, type TokenFetch } from './token-fetch.js';
import { sealed, type TokenInput, type TokenSet, toTokenSet } from './token-set.js';
import type { EventSink, SluiceEvent } from './types.js';

export { tokenKey } from './token-entry.js';

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
  /**
   * After a refresh whose answer was lost, present the same refresh token once more. Only for servers
   * with a documented reuse grace window (Okta's grace period, Auth0's rotation overlap): elsewhere the
   * second presentation looks like theft and revokes the whole grant. @default false
   */
  retryLostRefresh?: boolean;
  /** Longest token-endpoint cool-down (429/503 `Retry-After`) a caller waits out, in ms. @default 60000 */
  maxRateLimitWait?: number;
  /**
   * A token set saved earlier (from `onTokenChange`), used when the store holds none: a restart
   * starts from it instead of spending a refresh token or a login.
   */
  initial?: TokenInput;
  now?: () => number;
  random?: () => number;
}

type Options = Required<Omit<TokenManagerOptions, 'events' | 'refreshFetch' | 'initial'>> &
  Pick<TokenManagerOptions, 'events'>;

/** What a caller brings to a token wait: its abort signal, what is left of its attempt, and who it is. */
export interface TokenCall {
  readonly signal?: AbortSignal | undefined;
  /** The attempt's time limit: waiting (for the lock, the endpoint, a cool-down) ends with it. */
  readonly timeout?: AttemptTimeout | undefined;
  /** The call's method and URL, for the error it receives. */
  readonly method?: string;
  readonly url?: string;
  /** The call's ledger: one call never starts a second token request after its first one failed. */
  readonly state?: object;
}

/** Settles with `promise`, or rejects when the caller aborts or its budget runs out; `promise` goes on. */
function within<T>(promise: Promise<T>, call: TokenCall | undefined): Promise<T> {
  const signal = call?.signal;
  const budget = call?.timeout;
  if (!signal && !budget) return promise;
  if (signal?.aborted) return Promise.reject(abortReason(signal, call));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => settle(() => reject(abortReason(signal as AbortSignal, call)));
    const timer = budget
      ? setTimeout(
          () => settle(() => reject(new TimeoutError(budget.kind, budget.limit, callDetails(call)))),
          Math.max(0, remainingMs(budget)),
        )
      : undefined;
    signal?.addEventListener('abort', onAbort, { once: true });
    function settle(done: () => void) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      done();
    }
    promise.then(
      (value) => settle(() => resolve(value)),
      (error: unknown) => settle(() => reject(error)),
    );
  });
}

function callDetails(call: TokenCall | undefined): { method?: string; url?: string } {
  return call?.method !== undefined && call.url !== undefined ? { method: call.method, url: call.url } : {};
}

function abortReason(signal: AbortSignal, call?: TokenCall): SluiceError {
  return signal.reason instanceof SluiceError
    ? signal.reason
    : new AbortError({ ...callDetails(call), cause: signal.reason });
}

/**
 * The error one caller receives for a failure shared by every caller of a refresh: its own object,
 * naming the call (method, URL) and, in the message, the token endpoint's failure; the shared one is
 * the `cause`. The token endpoint's timeouts and network failures become an `AuthError` here: they were
 * retried under `auth.timeout`/`auth.retry`, and the call's own retries must not multiply them.
 */
export function errorForCall(shared: unknown, call: TokenCall | undefined): SluiceError {
  const details = callDetails(call);
  if (!(shared instanceof SluiceError)) return new AuthError('could not get a token', { ...details, cause: shared });
  if (shared instanceof StoreUnavailableError) {
    return new StoreUnavailableError(withoutPrefix(shared), { ...details, cause: shared });
  }
  if (shared instanceof AuthError) {
    return new AuthError(`could not get a token: ${shared.message}`, {
      code: shared.code,
      retryable: shared.retryable,
      oauthError: shared.oauthError,
      oauthErrorDescription: shared.oauthErrorDescription,
      status: shared.status,
      retryAfter: shared.retryAfter,
      ...details,
      cause: shared,
    });
  }
  if (shared instanceof TimeoutError || shared instanceof NetworkError) {
    const setting = shared instanceof TimeoutError ? ' within auth.timeout' : '';
    return new AuthError(`could not get a token${setting}: ${shared.message}`, {
      code: shared instanceof TimeoutError ? 'AUTH_TIMEOUT' : 'AUTH_NETWORK',
      retryable: true,
      ...details,
      cause: shared,
    });
  }
  if (shared instanceof AbortError) return new AbortError({ ...details, cause: shared });
  return new SluiceError(withoutPrefix(shared), {
    code: shared.code,
    retryable: shared.retryable,
    ...details,
    cause: shared,
  });
}

/** A message without the `[METHOD] url: ` its error added (the copy names the call instead). */
function withoutPrefix(error: SluiceError): string {
  const prefix = error.method && error.url ? `[${error.method}] ${error.url}: ` : '';
  return prefix && error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
}

/**
 * A wait someone awaits: its timer keeps the process alive (an unref'd one let a worker exit
 * mid-call), and the caller's abort ends it at once, timer and all.
 */
function pause(ms: number, call?: TokenCall): Promise<void> {
  const signal = call?.signal;
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal, call));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal, call));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const isRateLimited = (error: unknown): error is AuthError =>
  error instanceof AuthError && error.code === 'AUTH_RATE_LIMITED';

/** The holder must step back and wait again: it lost its lease, or someone wrote or presented meanwhile. */
const AGAIN = Symbol('again');

/**
 * Keeps one credential current: memory first (the hot path reads nothing else), the store at start,
 * near expiry and after a 401. One refresh at a time per process (single flight) and, through the
 * lock, one across every process sharing the store. The rules that hold whatever fails:
 * - a refresh token is marked spent in the store (compare-and-set) before it is presented, so no
 *   process presents it twice, even when the answer is lost or the holder is paused past its lease;
 * - every write is a compare-and-set on the revision read, so a stale holder never overwrites;
 * - new tokens are served from memory even when the store write fails, and the write is retried;
 * - a 429 from the token endpoint pauses the credential for the fleet until its `Retry-After`.
 */
export class TokenManager {
  readonly key: string;
  readonly grant: Grant;
  readonly #o: Options;
  readonly #fetch: TokenFetch;
  readonly #refreshFetch: TokenFetch;
  readonly #closing = new AbortController();
  #memory: TokenSet | undefined;
  #refreshAt = 0;
  #inFlight: Promise<TokenSet> | undefined;
  #storeDown = false;
  #listeners: ((tokens: TokenSet) => void)[] = [];
  /** Refresh tokens this process has presented: never again, whatever the store says. */
  #presented: string[] = [];
  /** New tokens whose store write failed: written again until it lands or is superseded. */
  #unwritten: { tokens: TokenSet; expected: number | undefined } | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #pausedUntil = 0;
  /** The saved token set to start from, until the store has one of its own. */
  #initial: TokenInput | undefined;
  /** Calls whose refresh failed, by their ledger: their next attempt gets the same failure. */
  #failedCalls = new WeakMap<object, unknown>();
  /** Store reads, counted so tests and benchmarks can prove the hot path makes none. */
  storeReads = 0;

  constructor(given: TokenManagerOptions) {
    const options = own(given);
    const o: Options = {
      skew: 60_000,
      jitter: 30_000,
      defaultLifetime: 3_600_000,
      lockTtl: 10_000,
      lockWait: 20_000,
      refreshTokenTtl: 30 * 24 * 3_600_000,
      keyPrefix: 'sluice:token:',
      retryLostRefresh: false,
      maxRateLimitWait: 60_000,
      now: Date.now,
      random: Math.random,
      ...options,
    };
    for (const name of [
      'skew',
      'jitter',
      'defaultLifetime',
      'lockTtl',
      'lockWait',
      'refreshTokenTtl',
      'maxRateLimitWait',
    ] as const) {
      const value = o[name];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new ConfigError(`auth.${name} must be a non-negative number of milliseconds, got ${String(value)}`);
      }
    }
    if (!(o.lockTtl >= 1)) throw new ConfigError('auth.lockTtl must be at least 1 ms');
    if (!o.grant || typeof o.grant.obtain !== 'function')
      throw new ConfigError('auth.grant must be a grant, e.g. clientCredentials({...})');
    this.#o = o;
    this.grant = o.grant;
    this.#initial = options.initial;
    // Token requests end when the client closes, also those a custom grant sends without a signal.
    const closing = this.#closing.signal;
    const until =
      (fetch: TokenFetch): TokenFetch =>
      (url, init) =>
        fetch(url, { ...init, signal: init?.signal ?? closing });
    this.#fetch = until(o.fetch);
    this.#refreshFetch = until(options.refreshFetch ?? options.fetch);
    this.key = tokenKey(o.grant, o.keyPrefix);
  }

  /** The token in memory if it is still good to send, without any I/O; starts a background refresh near expiry. */
  current(): TokenSet | undefined {
    const tokens = this.#memory;
    if (tokens === undefined) return undefined;
    const now = this.#o.now();
    if (now < this.#refreshAt) return tokens;
    if (now >= tokens.expiresAt - 1000) return undefined;
    if (!this.#inFlight && now >= this.#pausedUntil) this.#refresh(tokens.generation, 'expiring').catch(() => {});
    return tokens;
  }

  /**
   * A token good to send: from memory, the store, or a new one. Waiting (for another holder, the
   * token endpoint, a cool-down) ends with the caller's abort or the end of its attempt
   * (`call.timeout`, a `TimeoutError`); neither cancels the shared refresh, which the others go on
   * waiting for. Failures reach each caller as its own error, naming the call.
   */
  token(call?: TokenCall): Promise<TokenSet> {
    const tokens = this.current();
    if (tokens) return Promise.resolve(tokens);
    return this.#await(() => this.#refresh(this.#memory?.generation, 'expired'), call);
  }

  /**
   * The API refused a request sent with `generation`. If the token has already moved on, the current one
   * is returned; otherwise this joins, or starts, the one refresh.
   */
  rejected(generation: number | undefined, call?: TokenCall): Promise<TokenSet> {
    const tokens = this.#memory;
    if (
      tokens &&
      generation !== undefined &&
      tokens.generation > generation &&
      this.#o.now() < tokens.expiresAt - 1000
    ) {
      return Promise.resolve(tokens);
    }
    return this.#await(() => this.#refresh(generation ?? tokens?.generation, 'rejected'), call);
  }

  /**
   * A response to a request sent with `from` handed over a new credential (a rotated session cookie):
   * it is the current token at once, and is written to the store over the entry it replaces. A token
   * that has moved on since `from` wins over it.
   */
  rotated(from: TokenSet, input: TokenInput): void {
    // Only over the very token the request carried, still live: not over a newer one, nor one that
    // invalidate() ended while the response was on its way.
    const memory = this.#memory;
    if (!memory || memory.generation !== from.generation || !(memory.expiresAt > this.#o.now())) return;
    let tokens: TokenSet;
    try {
      tokens = toTokenSet(
        { ...input, refreshToken: input.refreshToken || from.refreshToken },
        from.generation + 1,
        this.#o.defaultLifetime,
        this.#o.now(),
      );
    } catch (error) {
      // A value no header can carry: the response stands, the credential stays as it was.
      this.#emit({
        action: 'failed',
        reason: 'a rotated credential was not usable; kept the current one',
        error: error as SluiceError,
      });
      return;
    }
    this.#adopt(tokens, 'rotated');
    const write = async () => {
      // A store without a compare-and-set on the server is only safe to write under the lock.
      const handle = this.#o.store.atomicSwap
        ? undefined
        : await this.#o.lock.acquire(`${this.key}:lock`, { ttlMs: this.#o.lockTtl, waitMs: this.#o.lockWait });
      if (!this.#o.store.atomicSwap && !handle) return;
      try {
        const snapshot = await this.#read();
        if (snapshot.tokens && snapshot.tokens.generation > from.generation) return;
        await this.#persist(tokens, snapshot.revision);
      } finally {
        await handle?.release().catch(() => {});
      }
    };
    write().catch(() => {});
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

  /** Ends token requests in flight and stops retrying a failed store write (the client calls this when it closes). */
  close(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#closing.abort(new AbortError({ cause: new Error('the client was closed') }));
  }

  #emit(event: Omit<Extract<SluiceEvent, { type: 'token' }>, 'type' | 'key'>): void {
    this.#o.events?.()?.({ type: 'token', key: this.key, ...event });
  }

  /**
   * One caller's wait for the shared refresh; a cool-down that ends within its budget is waited out
   * once. A call whose refresh failed gets that failure again on its next attempt rather than a second
   * round of token requests: one call makes at most `auth.retry + 1` of them per refusal.
   */
  async #await(start: () => Promise<TokenSet>, call: TokenCall | undefined): Promise<TokenSet> {
    const ledger = call?.state;
    // The caller's own TimeoutError or AbortError (from within()) is its own already; a failure of the
    // shared refresh is turned into one here.
    const flight = (): Promise<TokenSet> => {
      const failed = ledger && this.#failedCalls.get(ledger);
      if (failed) return Promise.reject(errorForCall(failed, call));
      const promise = start().catch((error: unknown) => {
        if (ledger) this.#failedCalls.set(ledger, error);
        throw errorForCall(error, call);
      });
      return within(promise, call);
    };
    try {
      return await flight();
    } catch (error) {
      if (!isRateLimited(error)) throw error;
      const wait = Math.max(0, this.#pausedUntil - this.#o.now());
      const budget = call?.timeout;
      if (budget && wait >= remainingMs(budget))
        throw new TimeoutError(budget.kind, budget.limit, { ...callDetails(call), cause: error });
      if (wait > this.#o.maxRateLimitWait) throw error;
      // The budget outlasts the pause (checked above): only the caller's abort can end this wait early.
      await pause(wait, call);
      if (ledger) this.#failedCalls.delete(ledger);
      return flight();
    }
  }

  #refresh(failed: number | undefined, reason: string): Promise<TokenSet> {
    if (this.#closing.signal.aborted) return Promise.reject(this.#closing.signal.reason);
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
  #usable(tokens: TokenSet | undefined, failed: number | undefined): tokens is TokenSet {
    if (!tokens || this.#o.now() >= tokens.expiresAt - 1000) return false;
    return failed === undefined || tokens.generation > failed;
  }

  async #run(failed: number | undefined): Promise<TokenSet> {
    let snapshot: Snapshot;
    try {
      snapshot = await this.#read();
    } catch (error) {
      return this.#offline(error);
    }
    if (this.#usable(snapshot.tokens, failed)) return this.#adopt(snapshot.tokens, 'loaded');

    const lockKey = `${this.key}:lock`;
    const waitStarted = this.#o.now();
    const giveUpAt = waitStarted + this.#o.lockWait;
    this.#emit({ action: 'lock-wait' });
    // Wait for the lock in short turns and look at the store between them: when another holder has
    // written the new generation, take it from the store without queueing for the lock at all. A store
    // that pushes changes ends the turn as soon as the entry is written.
    let wake: (() => void) | undefined;
    const unwatch = this.#o.store.watch?.(this.key, () => wake?.());
    try {
      return await this.#waitTurns(failed, lockKey, waitStarted, giveUpAt, snapshot, (signal) => {
        wake = () => signal.abort();
      });
    } finally {
      unwatch?.();
    }
  }

  async #waitTurns(
    failed: number | undefined,
    lockKey: string,
    waitStarted: number,
    giveUpAt: number,
    first: Snapshot,
    onTurn: (controller: AbortController) => void,
  ): Promise<TokenSet> {
    let snapshot = first;
    for (let turn = 0; ; turn++) {
      let handle: LockHandle | undefined;
      try {
        const waitMs = Math.max(0, Math.min(giveUpAt - this.#o.now(), 50 * 2 ** Math.min(turn, 2)));
        const controller = new AbortController();
        onTurn(controller);
        handle = await this.#o.lock.acquire(lockKey, { ttlMs: this.#o.lockTtl, waitMs, signal: controller.signal });
        if (!handle) snapshot = await this.#read();
      } catch (error) {
        return this.#offline(error);
      }
      if (handle) {
        this.#emit({ action: 'lock-acquired', durationMs: this.#o.now() - waitStarted });
        const outcome = await this.#hold(handle, failed);
        if (outcome !== AGAIN) return outcome;
        await pause(10 + this.#o.random() * 40);
      } else if (this.#usable(snapshot.tokens, failed)) {
        return this.#adopt(snapshot.tokens, 'loaded');
      }
      if (this.#o.now() >= giveUpAt) {
        throw new StoreUnavailableError(`no refresh within ${this.#o.lockWait} ms: the refresh lock stayed taken`);
      }
    }
  }

  /** Under the lock: re-read, and refresh only if the store still holds the generation that failed. */
  async #hold(handle: LockHandle, failed: number | undefined): Promise<TokenSet | typeof AGAIN> {
    // Keep the lock while this refresh is alive, however slow the token endpoint: a second holder
    // would otherwise wait for nothing. If this process dies or pauses, the beats stop and the lock
    // expires on the server within one TTL.
    const beat = handle.extend
      ? setInterval(
          () => {
            void handle.extend?.(this.#o.lockTtl).catch(() => false);
          },
          Math.min(2 ** 31 - 1, Math.max(50, this.#o.lockTtl / 3)),
        )
      : undefined;
    beat?.unref();
    try {
      if (this.#unwritten) await this.#flush();
      const snapshot = await this.#read();
      if (this.#usable(snapshot.tokens, failed)) return this.#adopt(snapshot.tokens, 'loaded');
      await this.#checkPause();
      let base = newest(snapshot.tokens, this.#memory);
      if (!base && this.#initial) {
        const now = this.#o.now();
        const seed = toTokenSet(
          this.#initial,
          1,
          this.#o.defaultLifetime,
          Math.min(now, this.#initial.expiresAt ?? now),
        );
        this.#initial = undefined;
        if (this.#usable(seed, failed)) {
          const outcome = await this.#persist(seed, snapshot.revision);
          return typeof outcome === 'object' ? this.#adopt(outcome, 'loaded') : this.#adopt(seed, 'loaded');
        }
        base = seed;
      }
      this.#emit({ action: 'requesting', generation: base?.generation });
      if (base?.refreshToken && this.#o.grant.refresh) return await this.#refreshWith(base, snapshot, handle, failed);
      if (base && this.#o.grant.renew && base.expiresAt > this.#o.now()) {
        const renewed = await this.#renew(base);
        if (renewed) return await this.#store(renewed, base, snapshot.revision, failed, false, handle);
      }
      return await this.#reauthenticate(base, snapshot.revision, failed, handle);
    } catch (error) {
      if (error instanceof StoreUnavailableError) return this.#offline(error);
      throw error;
    } finally {
      clearInterval(beat);
      await handle.release().catch(() => {});
    }
  }

  /** Presents `base.refreshToken` at most once for the whole fleet: marked spent in the store first. */
  async #refreshWith(
    base: TokenSet,
    snapshot: Snapshot,
    handle: LockHandle,
    failed: number | undefined,
  ): Promise<TokenSet | typeof AGAIN> {
    const refreshToken = base.refreshToken as string;
    const stored = snapshot.entry?.refreshToken === refreshToken ? snapshot.entry : undefined;
    if (stored?.spentAt !== undefined || this.#presented.includes(refreshToken)) {
      // Presented already. Its holder may still be waiting for the answer (it lost the lease, so it is
      // slow or paused): give it one lease to write; after that, or when it said so, the token is lost.
      const age = this.#o.now() - (stored?.spentAt ?? 0);
      if (stored && !stored.lost && age < this.#o.lockTtl) return AGAIN;
      return this.#lost(base, snapshot.revision, failed, undefined, handle);
    }
    // Right before presenting: the lock service (not a local timer) confirms the lease, and the store
    // takes the spent mark only if nobody wrote since our read.
    if (!(await handle.isHeld())) {
      this.#emit({ action: 'lock-lost', reason: 'the lease ended before the refresh token was presented' });
      return AGAIN;
    }
    const claim = nextRevision(snapshot.revision, this.#o.now());
    if (!(await this.#swap(toEntry(base, claim, { spentAt: this.#o.now() }), snapshot.revision))) return AGAIN;
    this.#presented = [...this.#presented.slice(-15), refreshToken];
    let input: TokenInput;
    try {
      input = await this.#present(base);
    } catch (error) {
      if (notProcessed(error)) {
        // The server said it did not process the request: the refresh token is still good.
        this.#presented = this.#presented.filter((token) => token !== refreshToken);
        await this.#swap(toEntry(base, nextRevision(claim, this.#o.now())), claim).catch(() => false);
        throw error;
      }
      if (error instanceof AuthError && error.oauthError === 'invalid_grant') {
        // Another process may have rotated it a moment ago (a store that lost our mark, an old entry).
        const again = await this.#read();
        if (this.#usable(again.tokens, failed) && again.tokens.generation > base.generation)
          return this.#adopt(again.tokens, 'loaded');
        if (!this.#o.grant.canReauthenticate) throw error;
        return this.#reauthenticate(base, again.revision, failed, handle);
      }
      if (!(this.#o.retryLostRefresh && mayHaveBeenSent(error))) return this.#lost(base, claim, failed, error, handle);
      try {
        input = await this.#present(base);
      } catch (second) {
        return this.#lost(base, claim, failed, second, handle);
      }
    }
    // No new refresh token (a server that does not rotate, or an empty one): the one presented is
    // still the credential, not spent.
    if (!input.refreshToken) this.#presented = this.#presented.filter((token) => token !== refreshToken);
    return this.#store(input, base, claim, failed, true, handle);
  }

  /** The refresh token was presented and its answer never came: re-authenticate if the grant can, else fail typed. */
  async #lost(
    base: TokenSet,
    revision: number | undefined,
    failed: number | undefined,
    cause: unknown,
    handle: LockHandle,
  ): Promise<TokenSet> {
    this.#emit({ action: 'refresh-token-lost', generation: base.generation });
    let expected = revision;
    const lost = nextRevision(revision, this.#o.now());
    if (await this.#swap(toEntry(base, lost, { spentAt: this.#o.now(), lost: true }), revision).catch(() => false))
      expected = lost;
    if (!this.#o.grant.canReauthenticate) {
      throw new AuthError(
        'the refresh token was presented and no answer came back; it may be spent and is never sent again: re-authentication is needed',
        { code: 'AUTH_REFRESH_TOKEN_LOST', cause },
      );
    }
    return this.#reauthenticate(base, expected, failed, handle);
  }

  /** New tokens from the primary grant (client credentials, password, a login), stored over `expected`. */
  async #reauthenticate(
    base: TokenSet | undefined,
    expected: number | undefined,
    failed: number | undefined,
    handle: LockHandle,
  ): Promise<TokenSet> {
    return this.#store(await this.#login(), base, expected, failed, false, handle);
  }

  /** The grant's own renewal of a live token; undefined when the server refused it (a login follows). */
  async #renew(base: TokenSet): Promise<TokenInput | undefined> {
    const renew = this.#o.grant.renew as NonNullable<Grant['renew']>;
    try {
      return await this.#paced(() => renew({ fetch: this.#fetch }, base));
    } catch (error) {
      if (!(error instanceof AuthError) || error.status === undefined || isRateLimited(error)) throw error;
      this.#emit({ action: 'renew-refused', generation: base.generation, error });
      return undefined;
    }
  }

  /** The primary grant. */
  #login(): Promise<TokenInput> {
    return this.#paced(() => this.#o.grant.obtain({ fetch: this.#fetch }));
  }

  /** The refresh-token grant on `base`, through the fetch that never re-sends once it may have arrived. */
  #present(base: TokenSet): Promise<TokenInput> {
    const refresh = this.#o.grant.refresh as NonNullable<Grant['refresh']>;
    return this.#paced(() => refresh({ fetch: this.#refreshFetch }, base));
  }

  /** Runs a token request; a 429 (or a long 503) first pauses the credential for the whole fleet. */
  async #paced(request: () => Promise<TokenInput>): Promise<TokenInput> {
    try {
      return await request();
    } catch (error) {
      if (isRateLimited(error)) await this.#coolDown(error);
      throw error;
    }
  }

  async #coolDown(error: AuthError): Promise<void> {
    const ms = Math.min(Math.max(error.retryAfter ?? 1000, 100), 3_600_000);
    const until = this.#o.now() + ms;
    this.#pausedUntil = Math.max(this.#pausedUntil, until);
    this.#emit({ action: 'rate-limited', durationMs: ms, error });
    await this.#o.store.set(`${this.key}:pause`, { until }, ms).catch(() => {});
  }

  /** Throws while this credential is cooling down, here or anywhere in the fleet (the store says). */
  async #checkPause(): Promise<void> {
    const raw = (await this.#o.store.get(`${this.key}:pause`)) as { until?: unknown } | undefined;
    const stored = typeof raw?.until === 'number' && Number.isFinite(raw.until) ? raw.until : 0;
    this.#pausedUntil = Math.max(this.#pausedUntil, stored);
    if (this.#pausedUntil > this.#o.now()) throw this.#rateLimited();
  }

  #rateLimited(): AuthError {
    const wait = Math.max(0, this.#pausedUntil - this.#o.now());
    return new AuthError(`the token endpoint asked for a pause; ${Math.ceil(wait)} ms left`, {
      code: 'AUTH_RATE_LIMITED',
      retryAfter: wait,
      retryable: true,
    });
  }

  /**
   * Serves new tokens from memory at once, then writes them as a compare-and-set on `expected`. A
   * newer entry found instead wins (we never overwrite it); a store that fails keeps the tokens in
   * memory and the write is retried in the background.
   */
  async #store(
    input: TokenInput,
    base: TokenSet | undefined,
    expected: number | undefined,
    failed: number | undefined,
    refreshed: boolean,
    handle: LockHandle,
  ): Promise<TokenSet> {
    const generation = Math.max(base?.generation ?? 0, this.#memory?.generation ?? 0, failed ?? 0) + 1;
    this.#emit({ action: 'received', generation });
    // Only a Bearer token can go out as `Authorization: Bearer`; another scheme (DPoP, MAC) needs a
    // grant that says where it goes (its placement), or it would be sent as what it is not.
    const type = input.tokenType ?? 'Bearer';
    if (!this.#o.grant.placement && typeof type === 'string' && type.toLowerCase() !== 'bearer') {
      throw new AuthError(
        `the token endpoint issued a token of type "${type.slice(0, 32).replace(/[^\w.~+/-]/g, '?')}"; only Bearer is sent unless the grant sets a placement`,
        { code: 'AUTH_UNSUPPORTED_TOKEN_TYPE' },
      );
    }
    const tokens = toTokenSet(
      refreshed ? { ...input, refreshToken: input.refreshToken || base?.refreshToken } : input,
      generation,
      this.#o.defaultLifetime,
      this.#o.now(),
    );
    if (!this.#o.store.atomicSwap && !(await handle.isHeld())) {
      // Without a compare-and-set on the server, only the lease keeps writers apart: someone else
      // may hold it now, so the store is not touched.
      this.#emit({ action: 'failed', reason: 'refresh lock expired before the write; token kept in memory only' });
      return this.#adopt(tokens, 'obtained');
    }
    const outcome = await this.#persist(tokens, expected);
    if (outcome === 'stored') return this.#adopt(tokens, 'stored');
    if (outcome === 'unwritten') return this.#adopt(tokens, 'obtained');
    return this.#adopt(outcome, 'loaded');
  }

  /** Writes new tokens; if the store fails, keeps them for the background retry. */
  async #persist(tokens: TokenSet, expected: number | undefined): Promise<'stored' | 'unwritten' | TokenSet> {
    try {
      return (await this.#write(tokens, expected)) ?? 'unwritten';
    } catch (error) {
      this.#emit({
        action: 'store-write-failed',
        generation: tokens.generation,
        reason: 'new tokens kept in memory; the write is retried',
        error: error instanceof SluiceError ? error : new StoreUnavailableError('token store write failed'),
      });
      // Retried in the background only where a compare-and-set keeps a late write from doing harm.
      if (this.#o.store.atomicSwap) {
        this.#unwritten = { tokens, expected };
        this.#scheduleFlush(0);
      }
      return 'unwritten';
    }
  }

  /**
   * Compare-and-set of `tokens` over revision `expected`, re-read and tried again while the store
   * holds something older. Resolves 'stored', or the newer entry that stands instead of ours (fencing),
   * or `undefined` after three tries; throws when the store cannot be reached.
   */
  async #write(tokens: TokenSet, expected: number | undefined): Promise<'stored' | TokenSet | undefined> {
    let current = expected;
    for (let round = 0; round < 3; round++) {
      if (await this.#swap(toEntry(tokens, nextRevision(current, this.#o.now())), current)) return 'stored';
      const now = await this.#read();
      // Our own write that timed out may have landed after all.
      if (now.tokens?.generation === tokens.generation && now.tokens.accessToken === tokens.accessToken)
        return 'stored';
      if (now.tokens && now.tokens.generation >= tokens.generation && this.#usable(now.tokens, undefined))
        return now.tokens;
      current = now.revision;
    }
    return undefined;
  }

  #scheduleFlush(round: number): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = setTimeout(
      () => {
        this.#flushTimer = undefined;
        void this.#flush().then((done) => {
          if (!done) this.#scheduleFlush(round + 1);
        });
      },
      Math.min(5000, 100 * 2 ** round) * (0.5 + this.#o.random() / 2),
    );
    this.#flushTimer.unref?.();
  }

  /** Writes tokens whose write failed; true when nothing is left to write. Never rejects. */
  async #flush(): Promise<boolean> {
    const pending = this.#unwritten;
    if (!pending) return true;
    if (pending.tokens !== this.#memory || this.#o.now() >= pending.tokens.expiresAt) {
      this.#unwritten = undefined;
      return true;
    }
    let outcome: 'stored' | TokenSet | undefined;
    try {
      outcome = await this.#write(pending.tokens, pending.expected);
    } catch {
      return false;
    }
    this.#unwritten = undefined;
    if (outcome === 'stored') {
      this.#emit({ action: 'stored', generation: pending.tokens.generation, reason: 'written after a failed write' });
    } else if (outcome) {
      this.#adopt(outcome, 'loaded');
    }
    return true;
  }

  /** Compare-and-set through the store, or read-compare-write where the store has none (one process only). */
  async #swap(entry: StoredEntry, expected: number | undefined): Promise<boolean> {
    const { store } = this.#o;
    const ttl = entryTtl(entry, this.#o.refreshTokenTtl, this.#o.now());
    const owned: StoredEntry = { ...entry, owner: this.key };
    if (store.swap) return store.swap(this.key, owned, expected, ttl);
    return readCompareWrite(store, this.key, owned, expected, ttl);
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
    // New tokens whose write failed are still good: serve them rather than ask again.
    const kept = this.#unwritten?.tokens;
    if (this.#usable(kept, undefined) && kept === this.#memory) return kept;
    if (!this.#o.grant.canReauthenticate) throw failure;
    if (this.#o.now() < this.#pausedUntil) throw this.#rateLimited();
    const input = await this.#login();
    const generation = (this.#memory?.generation ?? 0) + 1;
    return this.#adopt(toTokenSet(input, generation, this.#o.defaultLifetime, this.#o.now()), 'obtained');
  }

  async #read(): Promise<Snapshot> {
    this.storeReads++;
    const raw = await this.#o.store.get(this.key);
    if (this.#storeDown) {
      this.#storeDown = false;
      this.#emit({ action: 'store-recovered' });
    }
    const snapshot = readEntry(raw, this.#o.defaultLifetime, this.#o.now(), this.key);
    if (snapshot.corrupt) {
      this.#emit({
        action: 'store-entry-ignored',
        reason: 'stored entry is corrupt, of another version or written for another credential; it will be replaced',
      });
    }
    return snapshot;
  }

  #adopt(tokens: TokenSet, action: 'loaded' | 'stored' | 'obtained' | 'rotated'): TokenSet {
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
