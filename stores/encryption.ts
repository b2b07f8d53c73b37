import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ConfigError } from '../src/errors.js';

/** A 32-byte key, as bytes or base64; any other string is taken as a passphrase and hashed (SHA-256). */
export type EncryptionKey = string | Buffer;
/** One key, or several for rotation: the first encrypts, every one of them decrypts. */
export type EncryptionKeys = EncryptionKey | readonly EncryptionKey[];

/** What an encrypted entry looks like at rest: no plain token anywhere in it. */
export interface SealedEntry {
  v: 1;
  alg: 'A256GCM';
  /** Which key sealed it: a hash prefix of the key, never the key. */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

function toKey(key: EncryptionKey): Buffer {
  if (Buffer.isBuffer(key)) {
    if (key.length !== 32) throw new ConfigError('encryptionKey: a Buffer key must be 32 bytes');
    return key;
  }
  if (typeof key !== 'string' || key.length === 0)
    throw new ConfigError('encryptionKey must be a non-empty string or a 32-byte Buffer');
  const decoded = /^[A-Za-z0-9+/]{43}=$/.test(key) ? Buffer.from(key, 'base64') : undefined;
  if (decoded?.length === 32) return decoded;
  return createHash('sha256').update(key).digest();
}

/** AES-256-GCM for token entries at rest; the store key is bound in as associated data. */
export function encryption(keys: EncryptionKeys) {
  const list = (Array.isArray(keys) ? keys : [keys]) as EncryptionKey[];
  if (list.length === 0) throw new ConfigError('encryptionKey: give at least one key');
  const ring = list.map((key) => {
    const bytes = toKey(key);
    return { bytes, kid: createHash('sha256').update(bytes).digest('hex').slice(0, 12) };
  });
  const primary = ring[0]!;
  return {
    seal(value: unknown, storeKey: string): SealedEntry {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', primary.bytes, iv);
      cipher.setAAD(Buffer.from(storeKey));
      const data = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
      return {
        v: 1,
        alg: 'A256GCM',
        kid: primary.kid,
        iv: iv.toString('base64'),
        tag: cipher.getAuthTag().toString('base64'),
        data: data.toString('base64'),
      };
    },
    /** The value, or `undefined` when the entry is not ours, was tampered with or no key opens it. */
    open(entry: unknown, storeKey: string): unknown {
      const sealed = entry as Partial<SealedEntry> | null;
      if (!sealed || typeof sealed !== 'object' || sealed.v !== 1 || sealed.alg !== 'A256GCM') return undefined;
      const candidates = ring.filter((key) => key.kid === sealed.kid);
      for (const key of candidates.length > 0 ? candidates : ring) {
        try {
          const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(String(sealed.iv), 'base64'));
          decipher.setAAD(Buffer.from(storeKey));
          decipher.setAuthTag(Buffer.from(String(sealed.tag), 'base64'));
          const plain = Buffer.concat([decipher.update(Buffer.from(String(sealed.data), 'base64')), decipher.final()]);
          return JSON.parse(plain.toString('utf8'));
        } catch {
          // Wrong key or tampered data: try the next key.
        }
      }
      return undefined;
    },
  };
}
