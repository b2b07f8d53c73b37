import type { QueryValue, RequestOptions, SluiceResponse } from './client.js';
import { SluiceError } from './errors.js';
import { checkNames } from './own.js';
import { REQUEST_OPTIONS } from './request.js';

/** Where the next page is: a URL (absolute or relative), query changes for the same URL, or the end. */
export type NextPage = string | { query: Record<string, QueryValue> } | undefined;

export interface PaginateOptions<T> extends Omit<RequestOptions, 'method' | 'body' | 'responseType'> {
  /**
   * How the next page is found. `'link'` (default): the `Link: <...>; rel="next"` header (RFC 8288).
   * `'page'`: a `page` query parameter counted up until a short or empty page. `'cursor'`: the body's
   * `cursorField` sent back as the `cursorParam` query parameter. Or a function of the page.
   */
  next?: ('link' | 'page' | 'cursor' | ((page: SluiceResponse<unknown>, items: readonly T[]) => NextPage)) | undefined;
  /** The page's items. @default the body if it is an array, else its `items`, `data`, `results` or `values` array */
  items?: ((data: unknown, page: SluiceResponse<unknown>) => readonly T[]) | undefined;
  /** `'page'`: the page parameter, the size parameter and the size asked for. @default 'page', 'per_page', 100 */
  pageParam?: string | undefined;
  perPageParam?: string | undefined;
  perPage?: number | undefined;
  /**
   * `'page'`: a response header holding the total item count (e.g. `'x-total-count'`): the pages stop
   * once that many items came, without asking for an empty page. Only for APIs whose count is exact:
   * a capped count would end the pages early. @default none (stop at a short or empty page)
   */
  totalHeader?: string | undefined;
  /** `'cursor'`: the body field holding the next cursor and the query parameter it goes in. @default 'next_cursor', 'cursor' */
  cursorField?: string | undefined;
  cursorParam?: string | undefined;
  /** Stop after this many pages. @default 1000 */
  maxPages?: number | undefined;
  /** Stop after this many items. @default Infinity */
  maxItems?: number | undefined;
}

const PAGINATE_OPTIONS: ReadonlySet<string> = new Set([
  ...REQUEST_OPTIONS,
  'next',
  'items',
  'pageParam',
  'perPageParam',
  'perPage',
  'totalHeader',
  'cursorField',
  'cursorParam',
  'maxPages',
  'maxItems',
]);

/** The target of `rel="next"` in a Link header, in one left-to-right pass (linear in its length). */
export function nextLink(header: string | null): string | undefined {
  if (!header || header.length > 16_384) return undefined;
  let i = 0;
  while (i < header.length) {
    const open = header.indexOf('<', i);
    if (open === -1) return undefined;
    const close = header.indexOf('>', open + 1);
    if (close === -1) return undefined;
    const target = header.slice(open + 1, close);
    // The link's parameters run to the next "<" (a "," inside a quoted value cannot open a link).
    const following = header.indexOf('<', close + 1);
    const params = header.slice(close + 1, following === -1 ? header.length : following);
    if (/;\s*rel\s*=\s*(?:"[^"]*\bnext\b[^"]*"|next\b)/i.test(params)) return target.trim();
    i = following === -1 ? header.length : following;
  }
  return undefined;
}

function defaultItems<T>(data: unknown): readonly T[] {
  if (Array.isArray(data)) return data as T[];
  if (data && typeof data === 'object') {
    for (const key of ['items', 'data', 'results', 'values']) {
      const value = (data as Record<string, unknown>)[key];
      if (Object.hasOwn(data, key) && Array.isArray(value)) return value as T[];
    }
  }
  return [];
}

/**
 * Every item of every page, one page request at a time, each through the whole chain (auth, refresh,
 * retry, origin binding: a next link to another origin is refused like any absolute URL).
 */
export async function* paginate<T>(
  raw: (url: string, options: RequestOptions) => Promise<SluiceResponse<unknown>>,
  url: string,
  options: PaginateOptions<T>,
): AsyncGenerator<T, void, undefined> {
  checkNames('paginate', options, PAGINATE_OPTIONS);
  const {
    next = 'link',
    items = defaultItems,
    pageParam = 'page',
    perPageParam = 'per_page',
    perPage = 100,
    totalHeader,
    cursorField = 'next_cursor',
    cursorParam = 'cursor',
    maxPages = 1000,
    maxItems = Number.POSITIVE_INFINITY,
    ...request
  } = options;
  if (!(Number.isInteger(maxPages) && maxPages > 0))
    throw new SluiceError('maxPages must be a positive integer', { code: 'CONFIG' });
  let target = url;
  let query: Record<string, QueryValue> = { ...request.query };
  if (next === 'page') query = { ...query, [pageParam]: query[pageParam] ?? 1, [perPageParam]: perPage };
  let given = 0;
  let received = 0;
  for (let page = 0; page < maxPages; page++) {
    request.signal?.throwIfAborted();
    const response = await raw(target, { ...request, query });
    const found = items(response.data, response) as readonly T[];
    received += found.length;
    for (const item of found) {
      if (given >= maxItems) return;
      given++;
      yield item;
    }
    let after: NextPage;
    if (typeof next === 'function') after = next(response, found);
    else if (next === 'link') after = nextLink(response.headers.get('link'));
    else if (next === 'page') {
      const count = totalHeader === undefined ? null : response.headers.get(totalHeader);
      const total = count !== null && /^\s*\d{1,15}\s*$/.test(count) ? Number(count) : Number.POSITIVE_INFINITY;
      const done = found.length < perPage || received >= total;
      after = done ? undefined : { query: { ...query, [pageParam]: Number(query[pageParam]) + 1 } };
    } else {
      const data = response.data as Record<string, unknown> | undefined;
      const cursor =
        data && typeof data === 'object' && Object.hasOwn(data, cursorField) ? data[cursorField] : undefined;
      after = typeof cursor === 'string' && cursor !== '' ? { query: { ...query, [cursorParam]: cursor } } : undefined;
    }
    if (after === undefined || found.length === 0) return;
    if (typeof after === 'string') {
      // A next link carries its own query: the first page's is not added again.
      target = after;
      query = {};
    } else query = after.query;
  }
}
