/**
 * GitHub REST: a token (PAT or app installation token), `Link` pagination, and rate limits as GitHub sends
 * them. `X-RateLimit-*` on every answer is information, not a wait; a 403 or 429 with `Retry-After`, or
 * with `X-RateLimit-Remaining: 0`, is a rate limit, waited out when the wait is within `maxRetryAfter`.
 * Run it against a local mock: `npx tsx examples/recipes/github.ts`.
 */
import { createClient, staticToken } from 'sluice';
import { isMain } from './run.js';

export interface Issue {
  number: number;
  title: string;
}

export function gitHubClient(token: string, baseURL = 'https://api.github.com') {
  return createClient({
    baseURL,
    headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
    auth: { grant: staticToken(token) },
    // Wait up to a minute for a secondary limit or a reset; a longer wait fails with RateLimitError.
    retry: { limit: 3, maxRetryAfter: 60_000 },
  });
}

/** Every open issue, page by page (100 a page), following `Link: <...>; rel="next"`. */
export function openIssues(api: ReturnType<typeof gitHubClient>, owner: string, repo: string) {
  return api.paginate<Issue>(`repos/${owner}/${repo}/issues`, { query: { state: 'open', per_page: 100 } });
}

// ---- run it against the local mock ----
if (isMain(import.meta.url)) {
  const { startGitHub } = await import('./mocks/github.js');
  const gh = await startGitHub({ issues: 250 });
  gh.inject({ kind: 'bad-gateway' }); // retried at once, although X-RateLimit-Reset is an hour away
  gh.inject({ kind: 'secondary', retryAfter: 1 }); // waited out (1 s), then retried
  await using api = gitHubClient('ghp_test', gh.url);
  let count = 0;
  for await (const issue of openIssues(api, 'octo', 'hello')) if (issue.number > 0) count++;
  console.log(`${count} issues in ${gh.requests} requests`);
  await gh.close();
}
