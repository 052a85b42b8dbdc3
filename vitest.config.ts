import { defineConfig } from 'vitest/config';

// Two groups: the suite in parallel, then the few files that measure time-sensitive figures
// (`*.sequential.test.ts`) one at a time on a quiet machine, so their latencies are not those of a
// machine busy with other tests. (The CI gate's test is not one of them: the gate judges counted and
// simulated figures, and runs beside the rest.)
const shared = { testTimeout: 30_000, hookTimeout: 60_000, pool: 'forks' as const };

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: 'parallel', include: ['test/**/*.test.ts'], exclude: ['test/**/*.sequential.test.ts'], sequence: { groupOrder: 0 } } },
      { test: { ...shared, name: 'sequential', include: ['test/**/*.sequential.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
