import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyNotReplayableError, createClient, SluiceError } from '../../src/index.js';
import { json, startServer } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startServer>>;
let other: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  other = await startServer((request, response) =>
    json(response, 200, { method: request.method, body: request.body.toString() }),
  );
  server = await startServer((request, response) => {
    const [path = '', status = '302'] = request.url.slice(1).split('/');
    if (path === 'hop') {
      response.writeHead(Number(status), { location: '/target' });
      response.end();
    } else if (path === 'loop') {
      response.writeHead(302, { location: '/loop' });
      response.end();
    } else if (path === 'away') {
      response.writeHead(307, { location: `${other.url}/landed` });
      response.end();
    } else
      json(response, 200, {
        method: request.method,
        body: request.body.toString(),
        type: request.headers['content-type'] ?? null,
      });
  });
});
afterAll(async () => {
  await server.close();
  await other.close();
});

describe('redirects inside the chain', () => {
  const api = () => createClient({ baseURL: server.url, maxRedirects: 3 });

  it.each([
    ['301', 'GET', ''],
    ['302', 'GET', ''],
    ['303', 'GET', ''],
    ['307', 'POST', '{"a":1}'],
    ['308', 'POST', '{"a":1}'],
  ])('%s after a POST arrives as %s', async (status, method, body) => {
    const client = api();
    await expect(client.post(`hop/${status}`, { a: 1 })).resolves.toMatchObject({ method, body });
    await client.close();
  });

  it('stops after the hop limit', async () => {
    const client = api();
    const error = await client.get('loop').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).code).toBe('TOO_MANY_REDIRECTS');
    await client.close();
  });

  it('a 307 with a one-shot stream body cannot be followed', async () => {
    const client = api();
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('once'));
        controller.close();
      },
    });
    await expect(client.post('hop/307', stream)).rejects.toBeInstanceOf(BodyNotReplayableError);
    await client.close();
  });

  it('maxRedirects: 0 returns the 3xx as it is (as an error status it is not)', async () => {
    const client = createClient({ baseURL: server.url, maxRedirects: 0 });
    const raw = await client.raw('hop/302');
    expect(raw.status).toBe(302);
    expect(raw.headers.get('location')).toBe('/target');
    await client.close();
  });

  it('a 307 to another origin is not followed with the body (a password in it) unless you opt in', async () => {
    const client = createClient({ baseURL: server.url });
    const before = other.seen.length;
    await expect(client.post('away', { password: 'pw-secret' })).rejects.toMatchObject({
      code: 'REDIRECT_BODY_REFUSED',
    });
    expect(other.seen.length).toBe(before);
    await client.close();
  });

  it('with crossOriginRedirectBody, a hop to another origin drops secret headers and keeps the method and body of a 307', async () => {
    const client = createClient({
      baseURL: server.url,
      crossOriginRedirectBody: true,
      headers: { authorization: 'Bearer t', 'x-api-key': 'k', cookie: 'c=1', 'x-plain': 'p' },
    });
    await expect(client.post('away', 'payload', { headers: { 'content-type': 'text/plain' } })).resolves.toMatchObject({
      method: 'POST',
      body: 'payload',
    });
    const landed = other.seen.at(-1)!;
    expect(landed.headers.authorization).toBeUndefined();
    expect(landed.headers['x-api-key']).toBeUndefined();
    expect(landed.headers.cookie).toBeUndefined();
    expect(landed.headers['x-plain']).toBe('p');
    await client.close();
  });
});
