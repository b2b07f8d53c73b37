/**
 * An InsightConnect-style plugin: every failure becomes one of the plugin framework's exception presets,
 * a 204 is "nothing", and a body that is not JSON is a clear INVALID_JSON rather than a crash later.
 * Sluice's typed errors carry the status and the parsed body, so the mapping is a list of `instanceof`s.
 * Run it against a local mock: `npx tsx examples/recipes/insightconnect.ts`.
 */
import {
  apiKey,
  BadRequestError,
  ConflictError,
  createClient,
  ForbiddenError,
  isHttpError,
  NetworkError,
  NotFoundError,
  ParseError,
  RateLimitError,
  ServerError,
  ServiceUnavailableError,
  TimeoutError,
  UnauthorizedError,
} from 'sluice';
import { isMain } from './run.js';

const PRESETS = [
  [UnauthorizedError, 'API_KEY'],
  [ForbiddenError, 'UNAUTHORIZED'],
  [NotFoundError, 'NOT_FOUND'],
  [ConflictError, 'CONFLICT'],
  [RateLimitError, 'RATE_LIMIT'],
  [BadRequestError, 'BAD_REQUEST'],
  [ServiceUnavailableError, 'SERVICE_UNAVAILABLE'],
  [ServerError, 'SERVER_ERROR'],
  [ParseError, 'INVALID_JSON'],
  [TimeoutError, 'TIMEOUT'],
  [NetworkError, 'CONNECTION_ERROR'],
] as const;

export type Preset = (typeof PRESETS)[number][1] | 'UNKNOWN';

/** What the plugin framework shows the user: a preset, and the API's own answer when there was one. */
export class PluginException extends Error {
  readonly preset: Preset;
  readonly data: unknown;
  constructor(preset: Preset, data: unknown, options: { cause: unknown }) {
    super(`${preset}${data === undefined ? '' : `: ${JSON.stringify(data)}`}`, options);
    this.preset = preset;
    this.data = data;
  }
}

export function presetFor(error: unknown): Preset {
  return PRESETS.find(([type]) => error instanceof type)?.[1] ?? 'UNKNOWN';
}

export function insightClient(baseURL: string, key: string) {
  const api = createClient({ baseURL, auth: { grant: apiKey(key) }, retry: { limit: 1 } });
  /** Runs one API call; any failure comes out as a PluginException. */
  return async function call<T>(work: (client: typeof api) => Promise<T>): Promise<T> {
    try {
      return await work(api);
    } catch (error) {
      throw new PluginException(presetFor(error), isHttpError(error) ? error.body : undefined, { cause: error });
    }
  };
}

// ---- run it against the local mock ----
if (isMain(import.meta.url)) {
  const { startInsightConnect } = await import('./mocks/insightconnect.js');
  const ic = await startInsightConnect();
  const call = insightClient(`${ic.url}/api/v1/`, 'ic-key');
  console.log('jobs:', await call((api) => api.get('jobs')));
  console.log('delete (204):', await call((api) => api.delete('jobs/j1')));
  for (const path of ['jobs/nope', 'forbidden', 'conflict', 'broken']) {
    await call((api) => api.get(path)).catch((error: PluginException) => console.log(`${path}: ${error.message}`));
  }
  await ic.close();
}
