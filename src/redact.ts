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
  'dpop',
]);

const SECRET_NAME =
  /token|secret|passw|pwd|api[-_]?key|apikey|auth|credential|session|cookie|signature|private|assertion|verifier|dpop|^code$|^sig$|^key$/i;

/** Names that carry a credential here: where a credential was placed (`appid`), and the `redact` option's. */
const EXTRA_NAMES = new Set<string>();

/** Marks more header, query and field names as secret, everywhere in this process (logs, errors, events). */
export function addSecretNames(names: Iterable<string>): void {
  for (const name of names) if (typeof name === 'string' && name.length > 0) EXTRA_NAMES.add(name.toLowerCase());
}

/** True for a header or field name whose value must never be shown. */
export function isSecretName(name: string): boolean {
  const lower = name.toLowerCase();
  return SECRET_HEADERS.has(lower) || SECRET_NAME.test(name) || (EXTRA_NAMES.size > 0 && EXTRA_NAMES.has(lower));
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

/**
 * The `name=` / `name:` / `"name":` part of a pair in free text. Linear whatever the input: a name
 * starts only where a word starts (lookbehind) and is taken whole (a lookahead capture, so no
 * backtracking into it). Whether it is secret, and where its value ends, is decided by hand.
 */
const PAIR_NAME = /(?<![\w-])(["']?)(?=([\w-]{1,128}))\2\1\s{0,16}[:=]\s{0,16}/g;
const SECRET_WORD =
  /token|secret|passw|pwd|api[-_]?key|apikey|auth|credential|session|cookie|signature|assertion|verifier|dpop/i;
const isSecretWord = (name: string) =>
  SECRET_WORD.test(name) || name === 'code' || (EXTRA_NAMES.size > 0 && EXTRA_NAMES.has(name.toLowerCase()));
const VALUE_END = /[\s&,;}"]/;

/** Where a value starting at `start` ends: a quoted string (escapes honoured) or a run up to a delimiter. */
function valueEnd(text: string, start: number): number {
  let i = start;
  if (text[i] === '"') {
    for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    return Math.min(text.length, i + 1);
  }
  while (i < text.length && !VALUE_END.test(text[i] as string)) i++;
  return i;
}

/** Redacts secret-named `name=value` and `"name": "value"` pairs in free text, e.g. a body snippet. */
export function redactText(text: string): string {
  let out = '';
  let copied = 0;
  PAIR_NAME.lastIndex = 0;
  for (let match = PAIR_NAME.exec(text); match; match = PAIR_NAME.exec(text)) {
    const start = match.index + match[0].length;
    if (!isSecretWord(match[2] as string)) continue;
    const end = valueEnd(text, start);
    if (end === start) continue;
    out += text.slice(copied, start) + (text[start] === '"' ? `"${REDACTED}"` : REDACTED);
    copied = end;
    PAIR_NAME.lastIndex = end;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
