import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Machines } from "../../src/boot/machines.ts";
import { FlatcarConfigSchema } from "../../src/flatcar/config.ts";
import { Mirror } from "../../src/flatcar/mirror.ts";
import { CoalescedLog } from "../../src/limits/coalesce.ts";
import { silentLogger } from "../../src/log.ts";
import type { Store } from "../../src/store/index.ts";

/**
 * The machine owner over a store, as `kindling serve` builds it, for tests that run one protocol server in
 * process: its mirror is an empty one in a temp dir, syncing from `opts.flatcar.origin` when a test assigns.
 */
export function machinesFor(
  store: Store,
  opts: { discoveriesPerMinute?: number; flatcar?: Record<string, unknown> } = {},
): Machines {
  return new Machines({
    store,
    releases: new Mirror({
      root: mkdtempSync(join(tmpdir(), "kindling-mirror-")),
      config: FlatcarConfigSchema.parse(opts.flatcar ?? {}),
      events: store.events,
      log: silentLogger,
    }),
    discoveriesPerMinute: opts.discoveriesPerMinute ?? 1_000_000,
    requests: new CoalescedLog({ events: store.history, log: silentLogger }),
    log: silentLogger,
  });
}
