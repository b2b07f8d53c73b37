/**
 * Redaction in one place: logging, events, error messages and `toJSON()` all pass through here.
 * A name is secret when it looks like a credential; its value is replaced, the name is kept.
 */

export const REDACTED = '[REDACTED]';

const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-auth-token',
  'x-access-token',
  'x-vault-token',
  'x-csrf-token',
  'x-amz-security-token',
]);

const SECRET_NAME =
  /token|secret|passw|pwd|api[-_]?key|apikey|auth|credential|session|cookie|signature|private|assertion|^code$|^sig$|^key$/i;

/** True for a header or field name whose value must never be shown. */
export function isSecretName(name: string): boolean {
  return SECRET_HEADERS.has(name.toLowerCase()) || SECRET_NAME.test(name);
}

/** The URL with any user info and every secret-looking query value replaced. Never throws. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const at = url.indexOf('@');
  if (q === -1 && at === -1) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL we can take apart: keep only what is before any query or credential (user info starts
    // after the last "/" before the "@").
    const cut = q !== -1 && (at === -1 || q < at) ? q : url.lastIndexOf('/', at) + 1;
    return `${url.slice(0, cut)}${REDACTED}`;
  }
  if (parsed.username) parsed.username = REDACTED;
  if (parsed.password) parsed.password = REDACTED;
  for (const name of [...parsed.searchParams.keys()]) {
    if (isSecretName(name)) parsed.searchParams.set(name, REDACTED);
  }
  return parsed.href.replaceAll(encodeURIComponent(REDACTED), REDACTED);
}

/** A plain object of headers with secret values replaced. */
export function redactHeaders(headers: Iterable<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) out[name] = isSecretName(name) ? REDACTED : value;
  return out;
}

/** A deep copy of a JSON-like value with secret-named fields replaced; depth and size are bounded. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[…]';
  if (Array.isArray(value)) return value.slice(0, 100).map((item) => redactValue(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = isSecretName(key) ? REDACTED : redactValue(item, depth + 1);
  }
  return out;
}

const SECRET_PAIR =
  /(["']?)([\w-]*(?:token|secret|passw|pwd|api[-_]?key|apikey|auth|credential|session|cookie|signature)[\w-]*)\1(\s*[:=]\s*)("(?:[^"\\]|\\.)*"?|[^\s&,;}"]+)/gi;

/** Redacts `name=value` and `"name": "value"` pairs in free text, e.g. a body snippet. */
export function redactText(text: string): string {
  return text.replace(SECRET_PAIR, (_match, quote: string, name: string, sep: string, value: string) => {
    const replacement = value.startsWith('"') ? `"${REDACTED}"` : REDACTED;
    return `${quote}${name}${quote}${sep}${replacement}`;
  });
}
