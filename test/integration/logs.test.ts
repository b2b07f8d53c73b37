/**
 * Logs that read well (issue 12, item 6): one line per event with the message first for console and
 * winston, structured fields for pino, one info line per new token, no secret anywhere.
 */
import { Console } from 'node:console';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import winston from 'winston';
import { clientCredentials, createClient, type Logger } from '../../src/index.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A writable that keeps what is written, split into lines. */
function sink() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return {
    stream,
    lines: () => text.split('\n').filter((line) => line.length > 0),
  };
}

/** One token, two calls, through `logger`; returns the secrets that must appear nowhere. */
async function twoCalls(logger: Logger) {
  const auth = await startAuthServer();
  const api = await startApiServer({ auth });
  closers.push(auth.close, api.close);
  const client = createClient({
    baseURL: api.url,
    logger,
    auth: { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
  });
  closers.push(() => client.close());
  await client.get('whoami');
  await client.get('whoami?x=1');
  const token = (await client.auth?.token())?.accessToken as string;
  await new Promise((resolve) => setImmediate(resolve));
  return { url: api.url, secrets: [token, 'app-secret'] };
}

describe('log lines', () => {
  it('console: one line per event, message first, then the fields as JSON; one info line for the token', async () => {
    const out = sink();
    const { url, secrets } = await twoCalls(new Console({ stdout: out.stream, stderr: out.stream }));
    const lines = out.lines();
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) expect(line).toMatch(/^\S.* \{.*\}$/);
    const calls = lines.filter((line) => line.startsWith(`GET ${url}/whoami`));
    expect(calls).toHaveLength(2);
    expect(JSON.parse(calls[0]?.slice(calls[0].indexOf('{')) ?? '')).toMatchObject({ method: 'GET', status: 200 });
    expect(lines.filter((line) => line.startsWith('token '))).toEqual([expect.stringMatching(/^token stored /)]);
    for (const secret of secrets) expect(out.lines().join('\n')).not.toContain(secret);
  });

  it('winston: the message is the message, the fields are metadata', async () => {
    const out = sink();
    const logger = winston.createLogger({
      level: 'info',
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: out.stream })],
    });
    const { url, secrets } = await twoCalls(logger as unknown as Logger);
    const entries = out.lines().map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries.filter((entry) => entry.message === 'token stored')).toHaveLength(1);
    const call = entries.find((entry) => String(entry.message).startsWith(`GET ${url}/whoami`));
    expect(call).toMatchObject({ level: 'info', method: 'GET', status: 200, sluice: 'attempt' });
    for (const secret of secrets) expect(out.lines().join('\n')).not.toContain(secret);
  });

  it('pino: structured fields with msg; token steps at debug, one info line per token', async () => {
    const out = sink();
    const { url, secrets } = await twoCalls(pino({ level: 'debug' }, out.stream) as unknown as Logger);
    const entries = out.lines().map((line) => JSON.parse(line) as Record<string, unknown>);
    const call = entries.find((entry) => String(entry.msg).startsWith(`GET ${url}/whoami`));
    expect(call).toMatchObject({ method: 'GET', status: 200, sluice: 'attempt', level: 30 });
    const tokenLines = entries.filter((entry) => entry.sluice === 'token');
    expect(tokenLines.filter((entry) => entry.level === 30).map((entry) => entry.msg)).toEqual(['token stored']);
    expect(tokenLines.filter((entry) => entry.level === 20).length).toBeGreaterThanOrEqual(2);
    for (const secret of secrets) expect(out.lines().join('\n')).not.toContain(secret);
  });
});
