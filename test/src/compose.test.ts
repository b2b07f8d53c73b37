import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type AuthControl,
  apiKey,
  compose,
  createClient,
  HttpRequest,
  HttpResponse,
  type Middleware,
  type Next,
  type SluiceClient,
  type SluiceResponse,
} from '../../src/index.js';
import { bytesSource } from '../../src/internals.js';

const ok = (request: HttpRequest, body = '{}') =>
  new HttpResponse({
    status: 200,
    headers: { 'content-type': 'application/json' },
    url: request.url,
    body: bytesSource(body),
    request,
  });

describe('compose', () => {
  it('wraps in array order: the first middleware is outermost', async () => {
    const order: string[] = [];
    const tag =
      (name: string): Middleware =>
      async (request, next) => {
        order.push(`${name}>`);
        const response = await next(request);
        order.push(`<${name}`);
        return response;
      };
    const run = compose([tag('a'), tag('b'), tag('c')], async (request) => {
      order.push('terminal');
      return ok(request);
    });
    await run(new HttpRequest({ url: 'http://x.test/' }));
    expect(order).toEqual(['a>', 'b>', 'c>', 'terminal', '<c', '<b', '<a']);
  });

  it('lets a middleware call next three times and get three responses', async () => {
    let sent = 0;
    const responses: HttpResponse[] = [];
    const thrice: Middleware = async (request, next) => {
      for (let i = 0; i < 3; i++) responses.push(await next(request));
      return responses[2]!;
    };
    const run = compose([thrice], async (request) => ok(request, `{"n":${++sent}}`));
    const last = await run(new HttpRequest({ url: 'http://x.test/' }));
    expect(sent).toBe(3);
    expect(await Promise.all(responses.map((response) => response.json()))).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(last).toBe(responses[2]);
  });

  it('a middleware never sees a request mutated by another', async () => {
    const snapshots: string[] = [];
    const addHeader: Middleware = (request, next) => next(request.withHeader('x-added', '1'));
    const inspect: Middleware = async (request, next) => {
      snapshots.push(JSON.stringify([...request.headers]));
      const response = await next(request);
      snapshots.push(JSON.stringify([...request.headers]));
      return response;
    };
    const original = new HttpRequest({ url: 'http://x.test/', headers: new Headers({ a: 'b' }) });
    const before = JSON.stringify([...original.headers]);
    await compose([inspect, addHeader, inspect], async (request) => ok(request))(original);
    expect(JSON.stringify([...original.headers])).toBe(before);
    expect(snapshots[0]).toBe(before);
    expect(snapshots[1]).toBe(
      JSON.stringify([
        ['a', 'b'],
        ['x-added', '1'],
      ]),
    );
    expect(snapshots[3]).toBe(before);
  });

  it('rejects a middleware that is not a function', () => {
    expect(() => compose([42 as unknown as Middleware], async (request) => ok(request))).toThrow(TypeError);
  });

  it('with() copies and shares the call state', () => {
    const request = new HttpRequest({ url: 'http://x.test/', method: 'POST' });
    const copy = request.with({ url: 'http://x.test/other' });
    expect(copy).not.toBe(request);
    expect(copy.method).toBe('POST');
    expect(copy.state).toBe(request.state);
    expect(request.url).toBe('http://x.test/');
  });
});

describe('public types', () => {
  it('get<T> resolves to T, raw<T> to SluiceResponse<T>', () => {
    const api = {} as SluiceClient;
    interface User {
      id: number;
    }
    expectTypeOf(api.get<User>).returns.toEqualTypeOf<Promise<User>>();
    expectTypeOf(api.post<User>).returns.toEqualTypeOf<Promise<User>>();
    expectTypeOf(api.raw<User>).returns.toEqualTypeOf<Promise<SluiceResponse<User>>>();
    expectTypeOf(api.get).returns.toEqualTypeOf<Promise<unknown>>();
    expectTypeOf(createClient({ baseURL: 'https://a.example' })).toEqualTypeOf<SluiceClient>();
    // With auth, `api.auth` is there (no `?.` in strict mode).
    const authed = createClient({ baseURL: 'https://a.example', auth: { grant: apiKey('k') } });
    expectTypeOf(authed.auth).toEqualTypeOf<AuthControl>();
    void authed.close();
  });

  it('Middleware takes a request and next, and returns a response promise', () => {
    expectTypeOf<Middleware>().parameters.toEqualTypeOf<[HttpRequest, Next]>();
    expectTypeOf<Middleware>().returns.toEqualTypeOf<Promise<HttpResponse>>();
    expectTypeOf<Next>().parameters.toEqualTypeOf<[HttpRequest]>();
  });
});
