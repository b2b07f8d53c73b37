import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyNotReplayableError, clientCredentials, createClient, type SluiceClient } from '../../src/index.js';
import { type ApiServer, type AuthServer, startApiServer, startAuthServer } from '../../testing/index.js';

let auth: AuthServer;
let api: ApiServer;
let client: SluiceClient;

beforeAll(async () => {
  auth = await startAuthServer();
  api = await startApiServer({ auth });
  client = createClient({
    baseURL: api.url,
    auth: { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
  });
});
afterAll(async () => {
  await client.close();
  await api.close();
  await auth.close();
});

const sha = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');
interface Echo {
  bytes: number;
  sha256: string;
  contentType: string | null;
  method: string;
}

/** Revokes the current token so the next request gets a 401 and is re-issued. */
async function revoke() {
  await client.get('items/warm');
  auth.revokeAll();
  return api.counts.unauthorized;
}

describe('bodies re-sent after a 401 arrive intact', () => {
  it('JSON', async () => {
    const before = await revoke();
    const payload = { name: 'ünïcode ✓', list: [1, 2, 3] };
    const echo = await client.post<Echo>('echo', payload);
    expect(api.counts.unauthorized).toBe(before + 1);
    expect(echo.sha256).toBe(sha(JSON.stringify(payload)));
    expect(echo.contentType).toBe('application/json');
  });

  it('bytes', async () => {
    const before = await revoke();
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 31) % 256);
    const echo = await client.post<Echo>('echo', bytes, { headers: { 'content-type': 'application/octet-stream' } });
    expect(api.counts.unauthorized).toBe(before + 1);
    expect(echo.bytes).toBe(bytes.byteLength);
    expect(echo.sha256).toBe(sha(bytes));
  });

  it('FormData', async () => {
    const form = new FormData();
    form.set('field', 'value');
    form.set('file', new Blob([new Uint8Array([1, 2, 3, 4])], { type: 'application/octet-stream' }), 'f.bin');
    // The reference: what the same form looks like on the wire when no 401 happens.
    const reference = await client.post<Echo>('echo', form);
    const before = await revoke();
    const echo = await client.post<Echo>('echo', form);
    expect(api.counts.unauthorized).toBe(before + 1);
    expect(echo.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(echo.bytes).toBe(reference.bytes);
    expect(echo.bytes).toBeGreaterThan(100);
  });

  it('a stream body without opt-in fails with BodyNotReplayableError before anything is sent twice', async () => {
    const before = await revoke();
    const requestsBefore = api.counts.requests;
    const error = await client
      .post('echo', Readable.from([Buffer.from('chunk-1'), Buffer.from('chunk-2')]))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BodyNotReplayableError);
    expect(api.counts.unauthorized).toBe(before + 1);
    expect(api.counts.requests - requestsBefore).toBe(1);
  });

  it('a stream body with bufferBody is re-sent intact', async () => {
    const before = await revoke();
    const echo = await client.post<Echo>('echo', Readable.from([Buffer.from('chunk-1'), Buffer.from('chunk-2')]), {
      bufferBody: 1024,
    });
    expect(api.counts.unauthorized).toBe(before + 1);
    expect(echo.sha256).toBe(sha('chunk-1chunk-2'));
  });

  it('a body factory is called again for the re-issue', async () => {
    const before = await revoke();
    let calls = 0;
    const echo = await client.post<Echo>('echo', () => {
      calls++;
      return Readable.from([Buffer.from('made-fresh')]);
    });
    expect(api.counts.unauthorized).toBe(before + 1);
    expect(calls).toBe(2);
    expect(echo.sha256).toBe(sha('made-fresh'));
  });
});
