/** One adapter per client: an authenticated GET of a small JSON resource, parsed. */
import { Agent as HttpAgent } from 'node:http';
import axios from 'axios';
import { createAuthRefresh as createAuthRefreshInterceptor } from 'axios-auth-refresh';
import axiosRetry from 'axios-retry';
import got from 'got';
import ky from 'ky';
import { ofetch } from 'ofetch';
import { Agent, request } from 'undici';
import { sluice } from './lib.js';

const { clientCredentials, createClient } = sluice;

export interface Adapter {
  name: string;
  get(path: string): Promise<unknown>;
  close(): Promise<void>;
  /** Store reads so far, for clients that have a token manager. */
  storeReads?(): number;
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** A token from the client-credentials endpoint, for the clients that do not manage tokens themselves. */
export async function fetchToken(tokenURL: string): Promise<string> {
  const response = await fetch(tokenURL, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('app:app-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  return ((await response.json()) as { access_token: string }).access_token;
}

/**
 * axios with axios-retry and axios-auth-refresh, as people wire them: a request interceptor adds the
 * current token, a 401 fetches a new one. axios-auth-refresh's default (deduplicateRefresh: true)
 * rejects 401s that land while a refresh runs; false makes them share the one refresh.
 */
export function makeAxios(api: string, tokenURL: string, initialToken = '') {
  const client = axios.create({ baseURL: api, httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 128 }) });
  axiosRetry(client, { retries: 2 });
  let token = initialToken;
  client.interceptors.request.use((config) => {
    config.headers.Authorization = `Bearer ${token}`;
    return config;
  });
  createAuthRefreshInterceptor(
    client as never,
    async () => {
      token = await fetchToken(tokenURL);
    },
    { deduplicateRefresh: false },
  );
  return client;
}

export function makeAdapters(api: string, tokenURL: string, token: string): Adapter[] {
  const bearer = `Bearer ${token}`;
  const grant = () => clientCredentials({ tokenURL, clientId: 'app', clientSecret: 'app-secret' });

  const full = createClient({ baseURL: api, auth: { grant: grant() }, logger: silent });
  const viaFetch = createClient({ baseURL: api, transport: 'fetch', auth: { grant: grant() }, logger: silent });
  // Like for like with bare ofetch, which sets no time limit: no attempt timeout, so no AbortSignal per attempt.
  const viaFetchUntimed = createClient({
    baseURL: api,
    transport: 'fetch',
    auth: { grant: grant() },
    logger: silent,
    timeout: Number.POSITIVE_INFINITY,
  });
  const bare = createClient({ baseURL: api, middleware: [], headers: { authorization: bearer } });
  const bareOfetch = ofetch.create({ baseURL: api, headers: { authorization: bearer } });
  // The same, with the per-request time limit every Sluice attempt has (an AbortSignal per request).
  const timedOfetch = ofetch.create({ baseURL: api, headers: { authorization: bearer }, timeout: 30_000 });
  const agent = new Agent({ connections: 128 });
  const kyClient = ky.create({ prefixUrl: api, headers: { authorization: bearer } });
  const gotClient = got.extend({
    prefixUrl: api,
    headers: { authorization: bearer },
    agent: { http: new HttpAgent({ keepAlive: true, maxSockets: 128 }) },
  });
  const axiosClient = makeAxios(api, tokenURL, token);

  return [
    {
      name: 'sluice (full chain)',
      get: (path) => full.get(path),
      close: () => full.close(),
      storeReads: () => full.auth!.managers.reduce((sum, manager) => sum + manager.storeReads, 0),
    },
    { name: 'sluice (no middleware)', get: (path) => bare.get(path), close: () => bare.close() },
    { name: 'sluice (full, fetch transport)', get: (path) => viaFetch.get(path), close: () => viaFetch.close() },
    {
      name: 'sluice (full, fetch, no timeout)',
      get: (path) => viaFetchUntimed.get(path),
      close: () => viaFetchUntimed.close(),
    },
    { name: 'ofetch', get: (path) => bareOfetch(path), close: async () => {} },
    { name: 'ofetch (timeout 30 s)', get: (path) => timedOfetch(path), close: async () => {} },
    {
      name: 'fetch',
      get: async (path) => (await fetch(`${api}/${path}`, { headers: { authorization: bearer } })).json(),
      close: async () => {},
    },
    {
      name: 'undici.request',
      get: async (path) => {
        const response = await request(`${api}/${path}`, { dispatcher: agent, headers: { authorization: bearer } });
        return response.body.json();
      },
      close: () => agent.close(),
    },
    { name: 'ky', get: (path) => kyClient.get(path).json(), close: async () => {} },
    { name: 'got', get: (path) => gotClient.get(path).json(), close: async () => {} },
    {
      name: 'axios (+retry, +auth-refresh)',
      get: async (path) => (await axiosClient.get(path)).data,
      close: async () => {},
    },
  ];
}
