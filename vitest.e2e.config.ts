import { defineConfig } from "vitest/config";

/**
 * End-to-end boots: QEMU (TCG) inside network namespaces. One file at a time — each VM takes a whole
 * core under TCG and the machine has two, shared with the server under test.
 */
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: "forks",
    // KINDLING_TEST_DATABASE=postgres: one PostgreSQL for the run (test/helpers/database.ts).
    globalSetup: ["test/helpers/database-setup.ts"],
    fileParallelism: false,
    maxWorkers: 1,
  },
});
