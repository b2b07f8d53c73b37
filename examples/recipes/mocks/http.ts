/** Small helpers shared by the recipe mocks: listen on an ephemeral port, read a body, answer JSON. */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export { listen } from 'sluice/testing';

/** Reads a request body as text. */
export function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString()));
    request.on('error', reject);
  });
}

/** Parses a JSON object body; anything else becomes an empty object. */
export function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** Answers with a JSON body. */
export function json(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

/** A random hex string of `bytes` bytes. */
export function randomId(bytes = 12): string {
  return randomBytes(bytes).toString('hex');
}

/** The URL of a request, parsed against a placeholder origin. */
export function urlOf(request: IncomingMessage): URL {
  return new URL(request.url ?? '/', 'http://local');
}
