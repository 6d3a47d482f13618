import { configDefaults, defineConfig } from 'vitest/config';

// Two projects, told apart by file name alone so a new file is classified where it lands
// (docs/testing.md): `*.e2e.test.ts` is end to end wherever it is; every other `*.test.ts`
// is a unit test.
const E2E = '**/*.e2e.test.ts';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
          exclude: [...configDefaults.exclude, E2E],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: [`src/${E2E}`, `test/${E2E}`, `bench/${E2E}`],
          // End-to-end tests share loopback address ranges and sshd: one file at a time, and
          // only after the unit tests (a later group), so the two never compete.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
