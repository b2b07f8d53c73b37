/** A storage-array admin API look-alike: an API key header and page-numbered volume listing. */
import { createServer } from 'node:http';
import { json, listen, urlOf } from './http.js';

/** Options of {@link startStorageAdmin}. */
export interface StorageAdminOptions {
  /** Accepted `X-API-Key`. @default 'sa-key' */
  apiKey?: string;
  /** Number of volumes. @default 47 */
  volumes?: number;
}

/** Starts the mock storage admin API on 127.0.0.1 and an ephemeral port. */
export async function startStorageAdmin(options: StorageAdminOptions = {}) {
  const { apiKey = 'sa-key', volumes = 47 } = options;
  let requests = 0;
  const server = createServer((request, response) => {
    requests++;
    request.resume();
    if (request.headers['x-api-key'] !== apiKey) {
      json(response, 401, { error: 'unauthorized' });
      return;
    }
    const url = urlOf(request);
    if (request.method !== 'GET' || url.pathname !== '/api/v2/volumes') {
      json(response, 404, { error: 'not_found' });
      return;
    }
    const perPage = Math.min(Math.max(Math.floor(Number(url.searchParams.get('per_page')) || 20), 1), 50);
    const page = Math.max(Math.floor(Number(url.searchParams.get('page')) || 1), 1);
    const items = [];
    for (let n = (page - 1) * perPage + 1; n <= Math.min(page * perPage, volumes); n++) {
      items.push({ id: `vol-${String(n).padStart(3, '0')}`, name: `volume ${n}`, sizeGb: 100 + n });
    }
    json(response, 200, { items, page, per_page: perPage, total: volumes }, { 'x-total-count': String(volumes) });
  });
  const { url, close } = await listen(server);
  return {
    url,
    /** Requests received. */
    get requests() {
      return requests;
    },
    close,
  };
}

/** A running mock storage admin API. */
export type StorageAdminMock = Awaited<ReturnType<typeof startStorageAdmin>>;
