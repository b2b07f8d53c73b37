/**
 * Keyv's own compliance suite (@keyv/test-suite) against the Keyv that `keyvTokenStore` works through:
 * the caller's adapter and namespace with Sluice's key scheme (the namespace applied once). Sluice's
 * TokenStore is not a Keyv adapter, so this is where the suite applies: the view must still be a Keyv
 * that sets, expires, deletes and keeps namespaces apart on a real Redis and in memory. The suite's value
 * tests are left out: one of them installs a custom serializer, which the view deliberately does not use
 * (tokens are kept in Keyv's default JSON so that every Sluice process can read them).
 */
import KeyvRedis from '@keyv/redis';
import { keyvApiTests, keyvNamespaceTest } from '@keyv/test-suite';
import Keyv, { type KeyvOptions } from 'keyv';
import * as vitest from 'vitest';
import { canonicalView } from '../../stores/keyv.js';
import { needs, REDIS_URL } from '../helpers/services.js';

await needs('redis');

/** `new Keyv(options)` as a user writes it, seen the way keyvTokenStore sees it. */
const SluiceView = function SluiceView(options: KeyvOptions) {
  return canonicalView(new Keyv(options));
} as unknown as typeof Keyv;

const adapters: KeyvRedis<unknown>[] = [];
vitest.afterAll(async () => {
  await Promise.all(adapters.map((adapter) => adapter.disconnect().catch(() => {})));
});

vitest.describe('in memory (a Map)', () => {
  keyvApiTests(vitest, SluiceView, () => new Map());
  keyvNamespaceTest(vitest, SluiceView, () => new Map());
});

vitest.describe('@keyv/redis', () => {
  const redis = () => {
    const adapter = new KeyvRedis(REDIS_URL);
    adapters.push(adapter);
    return adapter;
  };
  keyvApiTests(vitest, SluiceView, redis);
  keyvNamespaceTest(vitest, SluiceView, redis);
});
