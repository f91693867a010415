import type { ReleaseStatus } from "../flatcar/mirror.ts";
import type { FlatcarRelease } from "../model/profile.ts";

/** Where boot plans find Flatcar releases (implemented by flatcar/Mirror). */
export interface ReleaseSource {
  /** Never blocks: answers from the mirror and starts a sync in the background when the release is missing. */
  ensure(release: FlatcarRelease): ReleaseStatus;
  /** Joins the release's running sync (or starts one); rejects with the reason it failed. */
  sync(release: FlatcarRelease): Promise<{ version: string }>;
}
