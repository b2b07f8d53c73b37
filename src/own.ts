import { ConfigError } from './errors.js';
import type { HeadersInput } from './types.js';

/**
 * Options objects read through their own properties only: a polluted `Object.prototype` (a `proxy`,
 * `headers` or `query` some dependency planted there) must change nothing Sluice does.
 */

/**
 * Throws a `ConfigError` naming the valid options when `options` has one that is not among them: a typo
 * (`timout`, `retry: { limt }`, `scopes`) fails where it is written instead of being ignored.
 */
export function checkNames(what: string, options: object | undefined, valid: ReadonlySet<string>): void {
  if (options === undefined || options === null) return;
  for (const name of Object.keys(options)) {
    if (!valid.has(name)) {
      throw new ConfigError(`unknown ${what} option "${name}"; valid: ${[...valid].join(', ')}`);
    }
  }
}

/** A null-prototype copy of `value`'s own enumerable properties; `undefined` stays `undefined`. */
export function own<T extends object>(value: T): T;
export function own<T extends object>(value: T | undefined): T | undefined;
export function own<T extends object>(value: T | undefined): T | undefined {
  if (value === undefined || value === null || typeof value !== 'object') return value;
  return Object.assign(Object.create(null) as T, value);
}

/** `value[key]` if `value` has it as its own property, else `undefined`. */
export function ownValue<T extends object, K extends keyof T>(value: T, key: K): T[K] | undefined {
  return Object.hasOwn(value, key) ? value[key] : undefined;
}

/** A credential placement checked for what it really is: a query name or a header (with an optional scheme). */
export function placementOf<P extends { header: string; scheme?: string | undefined } | { query: string }>(
  placement: P,
): P {
  const query = ownValue(placement as { query?: string }, 'query');
  if (typeof query === 'string') return Object.freeze(own({ query })) as P;
  const header = ownValue(placement as { header?: string }, 'header');
  const scheme = ownValue(placement as { scheme?: string }, 'scheme');
  return Object.freeze(own(scheme === undefined ? { header } : { header, scheme })) as P;
}

/** Headers given as a record, a `Headers` or pairs, as `new Headers()` takes them: a record's own properties only. */
export function headersInit(given: HeadersInput): ConstructorParameters<typeof Headers>[0] {
  return given instanceof Headers || Array.isArray(given)
    ? (given as ConstructorParameters<typeof Headers>[0])
    : own(given as Record<string, string>);
}

/** A client's default headers, checked once: an invalid name or value is a `ConfigError` that quotes neither. */
export function defaultHeaders(given: HeadersInput): Headers {
  try {
    return new Headers(headersInit(given));
  } catch {
    // Node's message quotes the rejected value, which may be a credential.
    throw new ConfigError('headers: a header name or value is invalid');
  }
}
