import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // KINDLING_TEST_DATABASE=postgres: one PostgreSQL for the run (test/helpers/database.ts).
    globalSetup: ["test/helpers/database-setup.ts"],
  },
});
