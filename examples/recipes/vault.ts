/**
 * HashiCorp Vault: an AppRole login gives a token sent as `X-Vault-Token`; Sluice renews it with
 * `renew-self` before its lease ends (no refresh token involved) and logs in again when Vault refuses the
 * renewal (the token reached its max TTL). Vault answers an expired token with 403, so 403 means "refused".
 * Run it against a local mock: `npx tsx examples/recipes/vault.ts`.
 */
import { AuthError, createClient, customGrant, type TokenInput } from 'sluice';
import { isMain } from './run.js';

/** A Vault `auth` answer (login or renewal) as a token; Vault's `errors` in the message otherwise. */
async function vaultToken(response: Response): Promise<TokenInput> {
  const body = (await response.json()) as {
    auth?: { client_token: string; lease_duration: number };
    errors?: string[];
  };
  if (!response.ok || !body.auth) {
    throw new AuthError(`Vault refused: ${body.errors?.join('; ') ?? response.status}`, { status: response.status });
  }
  return { accessToken: body.auth.client_token, expiresIn: body.auth.lease_duration };
}

export function vaultClient(address: string, approle: { roleId: string; secretId: string }) {
  return createClient({
    baseURL: `${address}/v1/`,
    auth: {
      grant: customGrant({
        id: `vault:${address}:${approle.roleId}`,
        placement: { header: 'X-Vault-Token' },
        obtain: async ({ fetch }) =>
          vaultToken(
            await fetch('auth/approle/login', {
              method: 'POST',
              body: JSON.stringify({ role_id: approle.roleId, secret_id: approle.secretId }),
            }),
          ),
        renew: async ({ fetch }, tokens) =>
          vaultToken(
            await fetch('auth/token/renew-self', { method: 'POST', headers: { 'X-Vault-Token': tokens.accessToken } }),
          ),
      }),
      refreshOn: [403],
    },
  });
}

// ---- run it against the local mock ----
if (isMain(import.meta.url)) {
  const { startVault } = await import('./mocks/vault.js');
  const vault = await startVault({ leaseSeconds: 1, maxTtlSeconds: 3 });
  await using api = vaultClient(vault.url, { roleId: 'role-1', secretId: 'secret-1' });
  for (let i = 0; i < 12; i++) {
    await api.get('secret/data/db');
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
  console.log(`logins ${vault.logins}, renewals ${vault.renewals}, reads ${vault.reads}, refused ${vault.denied}`);
  await vault.close();
}
