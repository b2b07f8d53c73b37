import { defineConfig } from 'vitest/config';

export default defineConfig({
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
