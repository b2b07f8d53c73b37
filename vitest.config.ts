import { defineConfig } from 'vitest/config';

const here = (path: string) => new URL(path, import.meta.url).pathname;

export default defineConfig({
  // Recipes import from 'sluice' as users do; here that is the source.
  resolve: {
    alias: [
      { find: /^sluice$/, replacement: here('./src/index.ts') },
      { find: /^sluice\/stores$/, replacement: here('./stores/index.ts') },
      { find: /^sluice\/middleware$/, replacement: here('./middleware/index.ts') },
      { find: /^sluice\/testing$/, replacement: here('./testing/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    coverage: {
      provider: 'v8',
      include: ['src/**', 'middleware/**', 'stores/**'],
      exclude: ['test/**', '**/index.ts', 'src/types.ts', 'src/store.ts'],
      reporter: ['text-summary', 'text'],
    },
  },
});
