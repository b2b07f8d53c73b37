import { ConfigError } from '../src/errors.js';

/**
 * Loads an optional peer dependency when a store first needs it, so that `sluice/stores` can be
 * imported with only the adapters you use installed.
 */
export async function importPeer<T>(name: string, load: () => Promise<T>, by: string): Promise<T> {
  try {
    return await load();
  } catch {
    throw new ConfigError(`${by} needs the ${name} package: npm install ${name}`);
  }
}
