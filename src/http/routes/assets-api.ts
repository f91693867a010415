import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { boardUrlPath } from "../../flatcar/layout.ts";
import type { Mirror } from "../../flatcar/mirror.ts";
import { boardOf, ReleaseRequestSchema } from "../../flatcar/release.ts";
import { body, errors, json } from "../api/common.ts";

const FileSchema = z.object({ name: z.string(), bytes: z.number(), signedBy: z.string() });
const ReleaseSchema = z
  .object({
    channel: z.string(),
    board: z.string(),
    arch: z.enum(["amd64", "arm64"]),
    version: z.string(),
    current: z.boolean(),
    bytes: z.number(),
    files: z.array(FileSchema),
    verifiedAt: z.string(),
    source: z.string(),
  })
  .meta({ id: "MirroredRelease" });
const Target = z.object({ channel: z.string(), board: z.string(), version: z.string() });
const StatusSchema = z
  .object({
    releases: z.array(ReleaseSchema),
    syncing: z.array(Target),
    failed: z.array(Target.extend({ reason: z.string(), at: z.string() })),
  })
  .meta({ id: "MirrorStatus" });

const SyncBody = ReleaseRequestSchema.extend({
  /** Answer only when the release is verified (or failed) instead of at once. */
  wait: z.boolean().default(false),
}).meta({ id: "AssetSyncRequest" });
const SyncResult = z
  .object({
    state: z.enum(["ready", "syncing"]),
    channel: z.string(),
    board: z.string(),
    version: z.string(),
    basePath: z.string().optional(),
  })
  .meta({ id: "AssetSyncResult" });

/** `GET /assets` (what the mirror holds) and `POST /assets/sync` (fetch and verify a release). */
export function registerAssets(app: OpenAPIHono, mirror: Mirror): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/assets",
      summary: "Verified Flatcar releases in the mirror, syncs in flight and recent failures",
      responses: { 200: json(StatusSchema, "mirror status"), ...errors(401) },
    }),
    async (c) => c.json(await mirror.list(), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/assets/sync",
      summary: "Download and verify a Flatcar release (`current` is resolved again at the origin)",
      request: body(SyncBody),
      responses: {
        200: json(SyncResult, "verified and mirrored (wait: true)"),
        202: json(SyncResult, "sync started; poll GET /assets"),
        502: json(z.object({ error: z.string() }), "the origin or the verification failed (wait: true)"),
        ...errors(400, 401, 413, 415),
      },
    }),
    async (c) => {
      const { wait, ...release } = c.req.valid("json");
      const board = boardOf(release.arch);
      const running = mirror.sync(release);
      if (!wait) {
        running.catch(() => {
          // Recorded as a flatcar.sync.failed event and in GET /assets.
        });
        return c.json({ state: "syncing" as const, channel: release.channel, board, version: release.version }, 202);
      }
      try {
        const { version } = await running;
        return c.json(
          {
            state: "ready" as const,
            channel: release.channel,
            board,
            version,
            basePath: boardUrlPath(release.channel, release.arch),
          },
          200,
        );
      } catch (err) {
        return c.json({ error: (err as Error).message }, 502);
      }
    },
  );
}
