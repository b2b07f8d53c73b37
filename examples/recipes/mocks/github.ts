/**
 * A GitHub REST API look-alike: token auth, rate-limit headers on every answer, paginated issues with a
 * `Link` header, and one-shot injected faults (502, primary and secondary rate limits, plain 403).
 */
import { createServer, type ServerResponse } from 'node:http';
import { json, listen, urlOf } from './http.js';

/** Options of {@link startGitHub}. */
export interface GitHubOptions {
  /** Accepted personal access token. @default 'ghp_test' */
  token?: string;
  /** Number of issues in every repository. @default 95 */
  issues?: number;
  /** `X-RateLimit-Limit`. @default 5000 */
  limit?: number;
}

/** A one-shot fault served, in order, before normal answers. */
export type GitHubFault =
  | { kind: 'bad-gateway' }
  | { kind: 'primary'; resetInSeconds: number }
  | { kind: 'secondary'; retryAfter: number }
  | { kind: 'forbidden' };

const documentationUrl = 'https://docs.github.com/rest';

/** Starts the mock GitHub API on 127.0.0.1 and an ephemeral port. */
export async function startGitHub(options: GitHubOptions = {}) {
  const { token = 'ghp_test', issues = 95, limit = 5000 } = options;
  const faults: GitHubFault[] = [];
  const times: number[] = [];
  let requests = 0;
  let used = 0;
  let resetAt = Math.ceil(Date.now() / 1000) + 3600;
  let origin = '';

  function rateHeaders(remaining: number, reset: number): Record<string, string> {
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-used': String(limit - remaining),
      'x-ratelimit-resource': 'core',
      'x-ratelimit-reset': String(reset),
    };
  }

  function normalHeaders(): Record<string, string> {
    if (Date.now() / 1000 >= resetAt) {
      resetAt = Math.ceil(Date.now() / 1000) + 3600;
      used = 0;
    }
    return rateHeaders(Math.max(limit - used, 0), resetAt);
  }

  function serveFault(response: ServerResponse, fault: GitHubFault): void {
    if (fault.kind === 'bad-gateway') {
      const html = '<html><body><h1>502 Bad Gateway</h1></body></html>';
      response.writeHead(502, { 'content-type': 'text/html', ...normalHeaders() });
      response.end(html);
    } else if (fault.kind === 'primary') {
      const reset = Math.ceil((Date.now() + fault.resetInSeconds * 1000) / 1000);
      const body = { message: 'API rate limit exceeded for user ID 1.', documentation_url: documentationUrl };
      json(response, 403, body, rateHeaders(0, reset));
    } else if (fault.kind === 'secondary') {
      const message = 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.';
      json(
        response,
        403,
        { message, documentation_url: documentationUrl },
        { ...normalHeaders(), 'retry-after': String(fault.retryAfter) },
      );
    } else {
      const body = { message: 'Resource not accessible by personal access token', documentation_url: documentationUrl };
      json(response, 403, body, normalHeaders());
    }
  }

  function linkHeader(path: string, perPage: number, page: number, last: number): string {
    const at = (p: number) => `<${origin}${path}?per_page=${perPage}&page=${p}>`;
    const links: string[] = [];
    if (page > 1) links.push(`${at(Math.min(page - 1, last))}; rel="prev"`);
    if (page < last) links.push(`${at(page + 1)}; rel="next"`, `${at(last)}; rel="last"`);
    if (page > 1) links.push(`${at(1)}; rel="first"`);
    return links.join(', ');
  }

  const server = createServer((request, response) => {
    requests++;
    times.push(Date.now());
    request.resume();
    const fault = faults.shift();
    if (fault) {
      serveFault(response, fault);
      return;
    }
    const header = request.headers.authorization ?? '';
    if (header !== `Bearer ${token}` && header !== `token ${token}`) {
      json(response, 401, { message: 'Bad credentials', documentation_url: documentationUrl }, normalHeaders());
      return;
    }
    used++;
    const url = urlOf(request);
    const match = /^\/repos\/[^/]+\/[^/]+\/issues$/.exec(url.pathname);
    if (!match || request.method !== 'GET') {
      json(response, 404, { message: 'Not Found', documentation_url: documentationUrl }, normalHeaders());
      return;
    }
    const perPage = Math.min(Math.max(Number(url.searchParams.get('per_page')) || 30, 1), 100);
    const page = Math.max(Math.floor(Number(url.searchParams.get('page')) || 1), 1);
    const last = Math.max(Math.ceil(issues / perPage), 1);
    const items = [];
    for (let n = (page - 1) * perPage + 1; n <= Math.min(page * perPage, issues); n++) {
      items.push({ id: 1000 + n, number: n, title: `Issue ${n}` });
    }
    const headers = normalHeaders();
    const link = linkHeader(url.pathname, perPage, page, last);
    json(response, 200, items, link ? { ...headers, link } : headers);
  });
  const { url, close } = await listen(server);
  origin = url;
  return {
    url,
    /** Requests received, faults included. */
    get requests() {
      return requests;
    },
    /** `Date.now()` of each request, in order. */
    times,
    /** Queues a one-shot fault; queued faults are served in order before normal answers. */
    inject(fault: GitHubFault): void {
      faults.push(fault);
    },
    close,
  };
}

/** A running mock GitHub API. */
export type GitHubMock = Awaited<ReturnType<typeof startGitHub>>;
