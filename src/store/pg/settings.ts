import { z } from "zod";

/**
 * How a node talks to PostgreSQL. `url` is a libpq-style URL (`postgres://user:pass@host:5432/db`, or a unix
 * socket as `postgres://user@/db?host=/run/postgresql`); everything else has a default sized for one node of
 * a few.
 */
export const PgSettingsSchema = z.strictObject({
  url: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL"),
  /**
   * Connections this node keeps at most. Each is a PostgreSQL backend process (~10 MiB on the server), so
   * nodes × poolMax must stay under the server's max_connections (100 by default) with room for operators.
   */
  poolMax: z.coerce.number().int().min(1).max(100).default(10),
  /**
   * Queries waiting for a free connection beyond which new ones are refused at once (DatabaseBusyError): a
   * flood of requests costs a bounded queue, not unbounded memory and minutes-old answers.
   */
  maxWaiting: z.coerce.number().int().min(0).max(100_000).default(1_000),
  /** A statement running longer is cancelled by the server (SQLSTATE 57014) and its caller gets the error. */
  statementTimeoutMs: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /** A new connection that has not authenticated by then counts as the database being unreachable. */
  connectTimeoutMs: z.coerce.number().int().min(100).max(60_000).default(5_000),
  /** Idle connections beyond the first are closed after this long. */
  idleTimeoutMs: z.coerce.number().int().min(1_000).default(30_000),
  /** First retry after the database became unreachable; doubles per failed try up to backoffMaxMs. */
  backoffMinMs: z.coerce.number().int().min(10).default(200),
  backoffMaxMs: z.coerce.number().int().min(100).default(30_000),
});

export type PgSettings = z.output<typeof PgSettingsSchema>;
export type PgSettingsInput = z.input<typeof PgSettingsSchema>;
