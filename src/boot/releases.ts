import type { FlatcarRelease } from "../model/profile.ts";

/** Where a Flatcar release's files are, once verified in the mirror (implemented by flatcar/Mirror). */
export type ReleaseStatus =
  | {
      state: "ready";
      version: string /** URL path of the board, e.g. /assets/flatcar/stable/amd64-usr */;
      basePath: string;
    }
  | { state: "syncing" | "failed"; reason: string };

export interface ReleaseSource {
  /** Never blocks: answers from the mirror and starts a sync in the background when the release is missing. */
  ensure(release: FlatcarRelease): ReleaseStatus;
  /** Joins the release's running sync (or starts one); rejects with the reason it failed. */
  sync(release: FlatcarRelease): Promise<{ version: string }>;
}
