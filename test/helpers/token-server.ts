import { expect } from 'vitest';
import type { AuthServer } from '../../testing/index.js';

/** No refresh token was ever presented twice, by the token server's own record. */
export function expectNoReuse(auth: AuthServer): void {
  expect(auth.counts.reuse).toBe(0);
  expect(new Set(auth.presented).size).toBe(auth.presented.length);
}
