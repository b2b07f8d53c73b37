// A consumer as a strict Node project writes it (no DOM lib): it must compile against the built types.
import { apiKey, clientCredentials, createClient, type SluiceError } from 'sluice';
import { keyvTokenStore, redisTokenStore } from 'sluice/stores';
import { startApiServer, startAuthServer } from 'sluice/testing';

const api = createClient({
  baseURL: 'https://api.example.com/',
  headers: { 'x-app': 'demo' },
  auth: {
    grant: clientCredentials({ tokenURL: 'https://idp.example/token', clientId: 'a', clientSecret: 'b' }),
    ...redisTokenStore('redis://127.0.0.1:6379', { encryptionKey: process.env.TOKEN_KEY }),
  },
});
export async function main(): Promise<string> {
  const token = await api.auth.token();
  const data = await api.get<{ id: number }>('things/1', { timeout: 1000, headers: { accept: 'application/json' } });
  const plain = createClient({ baseURL: 'https://x.example', auth: { grant: apiKey('k') } });
  await plain.close();
  void keyvTokenStore;
  const auth = await startAuthServer({ refreshTokens: true });
  const api2 = await startApiServer({ auth });
  api2.inject({ status: 503 }, { cutAfter: 3 });
  await Promise.all([auth.close(), api2.close()]);
  return `${token.tokenType} ${data.id}`;
}
export type E = SluiceError;
