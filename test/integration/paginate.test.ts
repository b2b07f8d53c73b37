/** Pagination through the whole chain (issue 11, item 2), against a real server. */
import { afterEach, describe, expect, it } from 'vitest';
import { apiKey, createClient, nextLink, type SluiceClient } from '../../src/index.js';
import { json, serverPool } from '../helpers/server.js';
import { rejection } from '../helpers/wait.js';

const servers = serverPool();
const clients: SluiceClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await servers.closeAll();
});

function client(url: string): SluiceClient {
  const api = createClient({ baseURL: url, auth: { grant: apiKey('page-key', { header: 'x-api-key' }) } });
  clients.push(api);
  return api;
}

const numbers = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ n: from + i }));

describe('paginate', () => {
  it('follows Link rel="next" (GitHub style), every page authenticated, until there is none', async () => {
    const s = await servers.start((request, response) => {
      const page = Number(new URL(request.url, 'http://x').searchParams.get('page') ?? 1);
      const base = `http://${request.headers.host}/repos`;
      const link =
        page < 3
          ? `<${base}?page=${page + 1}&per_page=2>; rel="next", <${base}?page=3&per_page=2>; rel="last"`
          : `<${base}?page=1>; rel="first"`;
      json(response, 200, numbers((page - 1) * 2, 2), { link });
    });
    const items = await client(s.url).paginateAll<{ n: number }>('repos', { query: { per_page: 2 } });
    expect(items.map((item) => item.n)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(s.seen.map((entry) => entry.url)).toEqual([
      '/repos?per_page=2',
      '/repos?page=2&per_page=2',
      '/repos?page=3&per_page=2',
    ]);
    expect(s.seen.every((entry) => entry.headers['x-api-key'] === 'page-key')).toBe(true);
  });

  it('page/per_page stops at a short page; cursor follows next_cursor; a custom next works', async () => {
    const s = await servers.start((request, response) => {
      const url = new URL(request.url, 'http://x');
      if (url.pathname === '/volumes') {
        const page = Number(url.searchParams.get('page'));
        json(response, 200, { items: numbers((page - 1) * 3, page < 3 ? 3 : 1) });
      } else if (url.pathname === '/events') {
        const cursor = url.searchParams.get('cursor');
        json(response, 200, { data: cursor ? numbers(10, 2) : numbers(0, 2), next_cursor: cursor ? null : 'c-2' });
      } else {
        const offset = Number(url.searchParams.get('offset') ?? 0);
        json(response, 200, { results: offset < 4 ? numbers(offset, 2) : [] });
      }
    });
    const api = client(s.url);
    const volumes = await api.paginateAll<{ n: number }>('volumes', { next: 'page', perPage: 3 });
    expect(volumes.map((item) => item.n)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const events = await api.paginateAll<{ n: number }>('events', { next: 'cursor' });
    expect(events.map((item) => item.n)).toEqual([0, 1, 10, 11]);
    const custom = await api.paginateAll<{ n: number }>('offsets', {
      next: (page, items) => ({
        query: { offset: Number(new URL(page.url).searchParams.get('offset') ?? 0) + items.length },
      }),
    });
    expect(custom.map((item) => item.n)).toEqual([0, 1, 2, 3]);
  });

  it('maxItems and maxPages bound an endless API; iteration can stop early', async () => {
    const s = await servers.start((request, response) => {
      const page = Number(new URL(request.url, 'http://x').searchParams.get('page') ?? 1);
      json(response, 200, numbers(page * 10, 10), { link: `</list?page=${page + 1}>; rel="next"` });
    });
    const api = client(s.url);
    expect(await api.paginateAll('list', { maxItems: 25 })).toHaveLength(25);
    expect(s.requests).toBe(3);
    expect(await api.paginateAll('list', { maxPages: 2 })).toHaveLength(20);
    for await (const item of api.paginate<{ n: number }>('list')) if (item.n >= 12) break;
    expect(s.requests).toBe(3 + 2 + 1);
  });

  it('page/per_page with totalHeader stops when that many items came, without asking for an empty page', async () => {
    const s = await servers.start((request, response) => {
      const page = Number(new URL(request.url, 'http://x').searchParams.get('page'));
      json(response, 200, page <= 2 ? numbers((page - 1) * 3, 3) : [], { 'x-total-count': '6' });
    });
    const items = await client(s.url).paginateAll('volumes', {
      next: 'page',
      perPage: 3,
      totalHeader: 'x-total-count',
    });
    expect(items).toHaveLength(6);
    expect(s.requests).toBe(2);
    // Without totalHeader (the default), the empty page ends it: one request more.
    await client(s.url).paginateAll('volumes', { next: 'page', perPage: 3 });
    expect(s.requests).toBe(2 + 3);
  });

  it('an abort mid-iteration ends it with an AbortError, in flight or between pages', async () => {
    const controller = new AbortController();
    const s = await servers.start((request, response) => {
      const page = Number(new URL(request.url, 'http://x').searchParams.get('page') ?? 1);
      const answer = () =>
        json(response, 200, numbers(page * 10, 10), { link: `</list?page=${page + 1}>; rel="next"` });
      if (page === 3) setTimeout(answer, 2000);
      else answer();
    });
    const seen: number[] = [];
    const iterating = (async () => {
      for await (const item of client(s.url).paginate<{ n: number }>('list', { signal: controller.signal })) {
        seen.push(item.n);
      }
    })();
    while (s.requests < 3) await new Promise((resolve) => setTimeout(resolve, 10));
    const started = Date.now();
    controller.abort();
    const error = await rejection(iterating);
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(seen).toHaveLength(20);
    expect(s.requests).toBe(3);
    // Aborted before the first page: nothing is sent.
    const before = s.requests;
    await expect(client(s.url).paginateAll('list', { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(s.requests).toBe(before);
  });

  it('a next link to another origin is refused: the key never leaves the API origin', async () => {
    const other = await servers.start((_, response) => json(response, 200, []));
    const s = await servers.start((_, response) =>
      json(response, 200, numbers(0, 1), { link: `<${other.url}/steal>; rel="next"` }),
    );
    const error = await rejection(client(s.url).paginateAll('list'));
    expect(error).toMatchObject({ code: 'ERR_ORIGIN_NOT_ALLOWED' });
    expect(other.requests).toBe(0);
  });

  it('the Link parser is linear and reads quoted and multi-valued rel', () => {
    expect(nextLink('<https://a/1>; rel="prev", <https://a/3>; rel="next last"')).toBe('https://a/3');
    expect(nextLink('<https://a/2>; title="x, y"; rel=next')).toBe('https://a/2');
    expect(nextLink('<https://a/1>; rel="nextish"')).toBeUndefined();
    for (const hostile of ['<'.repeat(16_000), `<${'a'.repeat(16_000)}`, `<a>;${' rel=x;'.repeat(2000)}`]) {
      const started = performance.now();
      nextLink(hostile);
      expect(performance.now() - started).toBeLessThan(10);
    }
  });
});
