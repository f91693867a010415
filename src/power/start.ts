import { join } from "node:path";
import type { Machines } from "../boot/machines.ts";
import type { Logger } from "../log.ts";
import { BmcStore } from "../store/bmcs.ts";
import type { Store } from "../store/index.ts";
import { PgBmcWrites } from "../store/pg/bmcs.ts";
import type { PowerConfig } from "./config.ts";
import { type Keyring, loadKeyring, rotateKeyFile } from "./keyring.ts";
import { PowerService } from "./service.ts";

/** The BMC key file, beside the URL signing key. */
export const bmcKeyFile = (dataDir: string) => join(dataDir, "bmc-keys");

/** What the API and console use: the BMC records, the actions, and key rotation. */
export interface Power {
  bmcs: BmcStore;
  service: PowerService;
  /** Adds a new key to the key file and re-encrypts every password with it; refused when keys come from env. */
  rotateKey(): Promise<{ keyId: string; rewrapped: number }>;
  close(): void;
}

/**
 * Loads the keyring (env or key file), re-encrypts passwords still under an older key (a rotation by
 * environment finishes here), and starts the power-state poller.
 */
export async function startPower(
  config: { dataDir: string; power: PowerConfig },
  store: Store,
  machines: Machines,
  log: Logger,
): Promise<Power> {
  const file = bmcKeyFile(config.dataDir);
  const fromEnv = config.power.key !== undefined;
  let keys: Keyring = loadKeyring({ file, envKey: config.power.key, envOldKeys: config.power.oldKeys });
  const shared = store.shared;
  const bmcs = new BmcStore(
    store.db,
    keys,
    shared && {
      writes: new PgBmcWrites(shared.pg),
      refresh: (kind, mac) => shared.replica.refresh(kind, mac),
      shipFirst: shared.shipFirst,
      log,
    },
  );
  const { rewrapped, unreadable } = await bmcs.rewrap();
  if (rewrapped > 0) log.info({ rewrapped, keyId: keys.currentId }, "re-encrypted BMC passwords with the current key");
  if (unreadable.length > 0)
    log.warn({ macs: unreadable.slice(0, 20), count: unreadable.length }, "BMC passwords no loaded key opens");
  const service = new PowerService({
    bmcs,
    machines: store.machines,
    events: store.events,
    owner: machines,
    log,
    settings: config.power,
  });
  service.startPolling();
  return {
    bmcs,
    service,
    async rotateKey() {
      if (fromEnv)
        throw new KeyRotationError(
          "BMC keys come from KINDLING_BMC_KEY: rotate by moving it to KINDLING_BMC_OLD_KEYS, setting a new one and restarting",
        );
      keys = rotateKeyFile(file);
      bmcs.useKeys(keys);
      const { rewrapped: n } = await bmcs.rewrap();
      log.info({ keyId: keys.currentId, rewrapped: n }, "rotated the BMC key");
      return { keyId: keys.currentId, rewrapped: n };
    },
    close: () => service.close(),
  };
}

export class KeyRotationError extends Error {
  override name = "KeyRotationError";
}
