/** What goes on the wire, checked with nock through the fetch transport (nock intercepts global fetch). */
import { Readable } from 'node:stream';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/index.js';

const origin = 'https://api.example.test';
beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

const api = createClient({
  baseURL: `${origin}/v1/`,
  transport: 'fetch',
  headers: { 'x-team': 'billing', accept: 'application/json' },
  query: { tenant: 't1' },
});

describe('on the wire', () => {
  it('joins baseURL and path, and merges default and per-call headers and query', async () => {
    const scope = nock(origin, { reqheaders: { 'x-team': 'ops', 'x-call': '1', accept: 'application/json' } })
      .get('/v1/users/42')
      .query({ tenant: 't1', page: '2', tags: ['a', 'b'] })
      .reply(200, { id: 42 });
    await expect(
      api.get('users/42', { headers: { 'x-team': 'ops', 'x-call': '1' }, query: { page: 2, tags: ['a', 'b'] } }),
    ).resolves.toEqual({ id: 42 });
    expect(scope.isDone()).toBe(true);
  });

  it("takes headers as a Headers or pairs, per call and as defaults, and never changes the caller's object", async () => {
    const defaults = new Headers({ 'x-team': 'billing', 'x-default': 'd' });
    const client = createClient({ baseURL: `${origin}/v1/`, transport: 'fetch', headers: defaults });
    const mine = new Headers({ 'X-Team': 'ops' });
    const seen: Record<string, unknown>[] = [];
    nock(origin)
      .post('/v1/items')
      .times(2)
      .reply(function reply() {
        seen.push({ ...this.req.headers });
        return [201, {}];
      });
    await client.post('items', { a: 1 }, { headers: mine });
    await client.post('items', { a: 1 }, { headers: [['x-pair', 'p']] });
    expect(seen[0]).toMatchObject({ 'x-team': 'ops', 'x-default': 'd', 'content-type': 'application/json' });
    expect(seen[1]).toMatchObject({ 'x-team': 'billing', 'x-pair': 'p', 'content-type': 'application/json' });
    // ofetch set content-type and accept on the call's own copy, not on what the caller passed.
    expect([...mine]).toEqual([['x-team', 'ops']]);
    expect([...defaults]).toEqual([
      ['x-default', 'd'],
      ['x-team', 'billing'],
    ]);
    await client.close();
  });

  it("a call's repeated header pairs: the last wins over client defaults, and are joined without defaults", async () => {
    const withDefaults = createClient({ baseURL: `${origin}/v1/`, transport: 'fetch', headers: { 'x-app': 'a' } });
    const without = createClient({ baseURL: `${origin}/v1/`, transport: 'fetch' });
    const seen: unknown[] = [];
    nock(origin)
      .get('/v1/d')
      .times(2)
      .reply(function reply() {
        seen.push(this.req.headers['x-d']);
        return [200, {}];
      });
    const pairs: [string, string][] = [
      ['x-d', '1'],
      ['x-d', '2'],
    ];
    await withDefaults.get('d', { headers: pairs });
    await without.get('d', { headers: pairs });
    expect(seen).toEqual(['2', '1, 2']);
    await withDefaults.close();
    await without.close();
  });

  it('leading slashes and absolute URLs', async () => {
    const scope = nock(origin)
      .get('/v1/a')
      .query(true)
      .reply(200, {})
      .get('/elsewhere')
      .query(true)
      .reply(200, { abs: true });
    await api.get('/a');
    await expect(api.get(`${origin}/elsewhere`)).resolves.toEqual({ abs: true });
    expect(scope.isDone()).toBe(true);
  });

  it('sends objects as JSON with a content type', async () => {
    let seen: { body: unknown; type: string | undefined } | undefined;
    nock(origin)
      .post('/v1/items')
      .query(true)
      .reply(function reply(_, body) {
        seen = { body, type: this.req.headers['content-type'] as string | undefined };
        return [201, { ok: true }];
      });
    await api.post('items', { name: 'x', n: [1, 2] });
    expect(seen).toEqual({ body: { name: 'x', n: [1, 2] }, type: 'application/json' });
  });

  it('sends URLSearchParams as a form, strings and bytes as they are', async () => {
    const bodies: { body: string; type: string | undefined }[] = [];
    nock(origin)
      .post('/v1/form')
      .query(true)
      .times(3)
      .reply(function reply(_, body) {
        bodies.push({
          body: typeof body === 'string' ? body : JSON.stringify(body),
          type: this.req.headers['content-type'] as string | undefined,
        });
        return [200, {}];
      });
    await api.post('form', new URLSearchParams({ a: '1', b: 'two words' }));
    await api.post('form', 'plain text', { headers: { 'content-type': 'text/plain' } });
    await api.post('form', new TextEncoder().encode('bytes!'), {
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(bodies[0]).toEqual({ body: 'a=1&b=two+words', type: 'application/x-www-form-urlencoded;charset=UTF-8' });
    expect(bodies[1]).toEqual({ body: 'plain text', type: 'text/plain' });
    expect(bodies[2]?.body).toBe('bytes!');
  });

  it('sends FormData as multipart, Blob with its type, and streams', async () => {
    const seen: { body: string; type: string | undefined }[] = [];
    nock(origin)
      .post('/v1/upload')
      .query(true)
      .times(3)
      .reply(function reply(_, body) {
        seen.push({ body: String(body), type: this.req.headers['content-type'] as string | undefined });
        return [200, {}];
      });
    const form = new FormData();
    form.set('field', 'value-1');
    await api.post('upload', form);
    await api.post('upload', new Blob(['blob-body'], { type: 'text/csv' }));
    await api.post('upload', Readable.from([Buffer.from('stream-'), Buffer.from('body')]));
    expect(seen[0]?.type).toMatch(/^multipart\/form-data; boundary=/);
    expect(seen[0]?.body).toContain('value-1');
    expect(seen[1]).toEqual({ body: 'blob-body', type: 'text/csv' });
    expect(seen[2]?.body).toBe('stream-body');
  });

  it('responseType text, arrayBuffer and blob', async () => {
    nock(origin)
      .get('/v1/file')
      .query(true)
      .times(3)
      .reply(200, 'raw-bytes', { 'content-type': 'application/octet-stream' });
    await expect(api.get('file', { responseType: 'text' })).resolves.toBe('raw-bytes');
    const buffer = await api.get<ArrayBuffer>('file', { responseType: 'arrayBuffer' });
    expect(new TextDecoder().decode(buffer)).toBe('raw-bytes');
    const blob = await api.get<Blob>('file', { responseType: 'blob' });
    expect(await blob.text()).toBe('raw-bytes');
  });

  it('raw() gives status, headers and data; head() gives headers', async () => {
    nock(origin)
      .get('/v1/r')
      .query(true)
      .reply(201, { ok: 1 }, { 'x-total': '7' })
      .head('/v1/r')
      .query(true)
      .reply(200, '', { 'x-total': '8' });
    const raw = await api.raw<{ ok: number }>('r');
    expect(raw).toMatchObject({ status: 201, ok: true, data: { ok: 1 } });
    expect(raw.headers.get('x-total')).toBe('7');
    const head = await api.head('r');
    expect(head.headers.get('x-total')).toBe('8');
    expect(head.data).toBeUndefined();
  });
});
