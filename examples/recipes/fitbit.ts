/**
 * A fitbit-style OAuth API: refresh tokens are single-use and rotate on every refresh, so the newest pair
 * must be saved each time (a `token_updater`) and a restart must start from the saved pair, or it spends a
 * refresh token the server has already replaced. `onTokenChange` saves; `auth.initial` starts from it.
 * Errors in fitbit's `{ errors: [{ errorType, message }] }` shape arrive as `AuthError.oauthError`.
 * Run it against a local mock: `npx tsx examples/recipes/fitbit.ts`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createClient, refreshTokenGrant, type TokenInput } from 'sluice';
import { isMain } from './run.js';

export interface FitbitApp {
  apiURL: string;
  tokenURL: string;
  clientId: string;
  clientSecret: string;
}

/** The saved pair, or undefined before the first run (then `first` seeds it). */
export async function loadTokens(path: string): Promise<TokenInput | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as TokenInput;
  } catch {
    return undefined;
  }
}

export function fitbitClient(app: FitbitApp, saved: TokenInput, file: string) {
  const api = createClient({
    baseURL: app.apiURL,
    auth: {
      grant: refreshTokenGrant({
        tokenURL: app.tokenURL,
        clientId: app.clientId,
        clientSecret: app.clientSecret,
        refreshToken: saved.refreshToken ?? '',
      }),
      initial: saved,
    },
  });
  // Every new pair, written before it is needed (token fields are hidden from JSON: pick them by name).
  api.auth?.onTokenChange(({ accessToken, refreshToken, expiresAt }) => {
    void writeFile(file, JSON.stringify({ accessToken, refreshToken, expiresAt }), { mode: 0o600 });
  });
  return api;
}

// ---- run it against the local mock ----
if (isMain(import.meta.url)) {
  const { startFitbit } = await import('./mocks/fitbit.js');
  const { tmpdir } = await import('node:os');
  const fitbit = await startFitbit({ accessLifetimeSeconds: 2 });
  const app = { apiURL: fitbit.url, ...fitbit };
  const file = `${tmpdir()}/fitbit-tokens-${process.pid}.json`;
  await writeFile(file, JSON.stringify(fitbit.issuePair()), { mode: 0o600 }); // from your authorization-code flow
  for (const run of [1, 2, 3]) {
    // A restart: a new client from the saved pair. Runs 1 and 2 use the same access token (no refresh);
    // by run 3 it has expired, and the saved refresh token is the current one.
    if (run === 3) await new Promise((resolve) => setTimeout(resolve, 1200));
    await using api = fitbitClient(app, (await loadTokens(file)) as TokenInput, file);
    await api.get('1/user/-/profile.json');
    console.log(`run ${run}: refreshes ${fitbit.refreshes}, reused refresh tokens ${fitbit.reusedRefreshTokens}`);
  }
  await fitbit.close();
}
