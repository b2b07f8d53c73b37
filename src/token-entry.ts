import { createHash } from 'node:crypto';
import type { Grant } from './grants.js';
import { revisionOf } from './store.js';
import { type TokenSet, toTokenSet } from './token-set.js';

/**
 * A token set as it is kept in the store. `revision` grows with every write of the entry (token sets
 * and spent marks alike), and every write is a compare-and-set on it: a holder that read revision r
 * can only write where the entry is still at r, so a stale holder never overwrites a newer entry.
 */
// A type, not an interface: it must fit the store's open `Revisioned` shape.
export type StoredEntry = {
  v: 1;
  revision: number;
  accessToken: string;
  tokenType: string;
  expiresAt: number;
  refreshToken?: string | undefined;
  scope?: string | undefined;
  generation: number;
  /**
   * When the refresh token in this entry was presented to the token endpoint. From then on no process
   * presents it again: it is spent, whether or not its answer ever arrives.
   */
  spentAt?: number | undefined;
  /** The refresh answer was lost: the refresh token is gone for good and nobody waits for its holder. */
  lost?: boolean | undefined;
  /**
   * The store key (so, the credential) this entry was written for. An entry found under another key
   * (copied there, or written by a tenant whose settings hash elsewhere) is foreign and ignored.
   * Absent in entries written before it existed: those are still read.
   */
  owner?: string | undefined;
};

/** What one read of the store found. */
export interface Snapshot {
  /** The token set, when the entry is there and valid. */
  tokens: TokenSet | undefined;
  entry: StoredEntry | undefined;
  /** The entry's revision: the `expected` of the next compare-and-set. */
  revision: number | undefined;
  /** An entry was there but could not be used (corrupt, tampered, of another version). */
  corrupt: boolean;
}

/** The store key for a grant: a hash of its identity, so that no secret and no raw id appears in it. */
export function tokenKey(grant: Grant, prefix = 'sluice:token:'): string {
  const identity = Object.entries(grant.identity)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));
  return prefix + createHash('sha256').update(JSON.stringify(identity)).digest('base64url').slice(0, 32);
}

/**
 * The revision after `expected`: larger than it and, so that a store that was flushed and filled
 * again cannot bring an old revision back (ABA), never below the clock.
 */
export function nextRevision(expected: number | undefined, now: number): number {
  return Math.max((expected ?? 0) + 1, Math.floor(now));
}

export function toEntry(tokens: TokenSet, revision: number, mark?: Pick<StoredEntry, 'spentAt' | 'lost'>): StoredEntry {
  return {
    v: 1,
    revision,
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    expiresAt: tokens.expiresAt,
    refreshToken: tokens.refreshToken,
    scope: tokens.scope,
    generation: tokens.generation,
    ...(mark?.spentAt === undefined ? {} : { spentAt: mark.spentAt }),
    ...(mark?.lost ? { lost: true } : {}),
  };
}

/** Validates what the store returned under `owner`; anything unusable or foreign is `corrupt`, never an error. */
export function readEntry(raw: unknown, defaultLifetime: number, now: number, owner?: string): Snapshot {
  const revision = revisionOf(raw);
  if (raw === undefined || raw === null) return { tokens: undefined, entry: undefined, revision, corrupt: false };
  const entry = raw as Partial<StoredEntry>;
  try {
    if (entry.v !== 1 || typeof entry.generation !== 'number' || !Number.isSafeInteger(entry.generation))
      throw new Error('shape');
    if (entry.spentAt !== undefined && typeof entry.spentAt !== 'number') throw new Error('shape');
    if (entry.owner !== undefined && entry.owner !== owner) throw new Error('foreign');
    const tokens = toTokenSet(
      {
        accessToken: entry.accessToken as string,
        tokenType: entry.tokenType,
        expiresAt: entry.expiresAt,
        refreshToken: entry.refreshToken,
        scope: entry.scope,
      },
      entry.generation,
      defaultLifetime,
      Math.min(now, typeof entry.expiresAt === 'number' ? entry.expiresAt : 0),
    );
    return { tokens, entry: entry as StoredEntry, revision, corrupt: false };
  } catch {
    return { tokens: undefined, entry: undefined, revision, corrupt: true };
  }
}

/** How long the store keeps an entry: a refresh token outlives its access token by far. */
export function entryTtl(
  tokens: Pick<StoredEntry, 'expiresAt' | 'refreshToken'>,
  refreshTokenTtl: number,
  now: number,
): number {
  const lifetime = tokens.expiresAt - now;
  return Math.max(1000, tokens.refreshToken ? Math.max(lifetime, refreshTokenTtl) : lifetime + 60_000);
}
