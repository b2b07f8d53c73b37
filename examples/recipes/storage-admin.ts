/**
 * A storage admin REST API: an API key header and `page`/`per_page` pagination that ends on a short page.
 * Run it against a local mock: `npx tsx examples/recipes/storage-admin.ts`.
 */
import { apiKey, createClient } from 'sluice';
import { isMain } from './run.js';

export interface Volume {
  id: string;
  name: string;
  sizeGb: number;
}

export function storageAdmin(baseURL: string, key: string) {
  return createClient({ baseURL, auth: { grant: apiKey(key, { header: 'X-API-Key' }) } });
}

/** Every volume: page=1,2,... with per_page=50 until a page has fewer than 50 (the items are `body.items`). */
export function volumes(api: ReturnType<typeof storageAdmin>) {
  return api.paginate<Volume>('api/v2/volumes', { next: 'page', perPage: 50 });
}

// ---- run it against the local mock ----
if (isMain(import.meta.url)) {
  const { startStorageAdmin } = await import('./mocks/storage-admin.js');
  const admin = await startStorageAdmin({ volumes: 120 });
  await using api = storageAdmin(admin.url, 'sa-key');
  const all = await api.paginateAll<Volume>('api/v2/volumes', { next: 'page', perPage: 50 });
  console.log(`${all.length} volumes in ${admin.requests} requests; first ${all[0]?.name}`);
  await admin.close();
}
