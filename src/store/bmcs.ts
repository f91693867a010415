import type { BmcInput, BmcRecord, PowerState } from "../model/power.ts";
import { defaultPort } from "../model/power.ts";
import { type Db, nowIso } from "./db.ts";
import { NotFoundError } from "./errors.ts";
import type { PgBmcWrites } from "./pg/bmcs.ts";

/** Where a PostgreSQL node's BMC writes go first, and how the node's replica learns them. */
export interface SharedBmcs {
  writes: PgBmcWrites;
  refresh(kind: "b" | "m", mac: string): Promise<void>;
  /** Ships this node's sighting of the machine first (store/pg/state-writes.ts says why). */
  shipFirst(mac: string): Promise<void>;
  log: { warn(obj: object, msg: string): void };
}

/** Encrypts and decrypts passwords for the store; the store never sees a key. */
export interface SecretBox {
  readonly currentId: string;
  encrypt(plaintext: string, mac: string): string;
  decrypt(ciphertext: string, mac: string): string;
}

interface Row {
  mac: string;
  driver: BmcRecord["driver"];
  address: string;
  port: number;
  username: string;
  secret: string;
  key_id: string;
  options: string;
  power_state: PowerState;
  power_error: string | null;
  power_checked_at: string | null;
  created_at: string;
  updated_at: string;
}

type Options = Pick<BmcInput, "cipherSuite" | "systemId" | "auth" | "caCert" | "insecure">;

const toRecord = (r: Row): BmcRecord => ({
  mac: r.mac,
  driver: r.driver,
  address: r.address,
  port: r.port,
  username: r.username,
  ...(JSON.parse(r.options) as Options),
  power: { state: r.power_state, checkedAt: r.power_checked_at, error: r.power_error },
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * Machines' BMCs. Passwords go in and out only through the SecretBox; the row holds ciphertext. Reads come
 * from the node's file; on a PostgreSQL node (`shared`) writes go to PostgreSQL first and the file is its
 * replica (pg/replica.ts), so a BMC set through one node powers the machine from any node.
 */
export class BmcStore {
  constructor(
    private readonly db: Db,
    private box: SecretBox,
    private readonly shared?: SharedBmcs,
  ) {}

  /** After a key rotation: new passwords are encrypted with the new keyring's current key. */
  useKeys(box: SecretBox): void {
    this.box = box;
  }

  get(mac: string): BmcRecord | undefined {
    const r = this.db.prepare("SELECT * FROM bmcs WHERE mac = ?").get(mac) as Row | undefined;
    return r && toRecord(r);
  }

  require(mac: string): BmcRecord {
    const b = this.get(mac);
    if (!b) throw new NotFoundError(`machine ${mac} has no BMC`);
    return b;
  }

  /** The password, decrypted for one BMC call. */
  password(mac: string): string {
    const r = this.db.prepare("SELECT secret FROM bmcs WHERE mac = ?").get(mac) as Pick<Row, "secret"> | undefined;
    if (!r) throw new NotFoundError(`machine ${mac} has no BMC`);
    return this.box.decrypt(r.secret, mac);
  }

  /** Sets (or replaces) the machine's BMC; the machine must exist. */
  async put(mac: string, input: BmcInput): Promise<BmcRecord> {
    const { driver, address, port, username, password, ...options } = input;
    const now = nowIso();
    const v = {
      mac,
      driver,
      address,
      port: port ?? defaultPort(driver),
      username,
      secret: this.box.encrypt(password, mac),
      key_id: this.box.currentId,
      options: JSON.stringify(options),
      power_state: "unknown",
      power_error: null,
      power_checked_at: null,
      created_at: now,
      updated_at: now,
    };
    if (this.shared) {
      await this.shared.shipFirst(mac);
      await this.shared.writes.put(v);
      await this.shared.refresh("b", mac);
      return this.require(mac);
    }
    const exists = this.db.prepare("SELECT 1 FROM machines WHERE mac = ?").get(mac);
    if (!exists) throw new NotFoundError(`machine ${mac} not found`);
    const cols = Object.keys(v);
    this.db
      .prepare(
        `INSERT INTO bmcs (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})
         ON CONFLICT(mac) DO UPDATE SET ${cols
           .filter((c) => c !== "mac" && c !== "created_at")
           .map((c) => `${c} = excluded.${c}`)
           .join(", ")}`,
      )
      .run(...Object.values(v));
    return this.require(mac);
  }

  async delete(mac: string): Promise<void> {
    if (this.shared) {
      await this.shared.writes.delete(mac);
      await this.shared.refresh("b", mac);
      return;
    }
    if (this.db.prepare("DELETE FROM bmcs WHERE mac = ?").run(mac).changes === 0)
      throw new NotFoundError(`machine ${mac} has no BMC`);
  }

  /**
   * Records what the BMC last said about power (or why it could not be asked). At once in the file; on a
   * PostgreSQL node also there, in the background: an observation lost to an outage is made again by the
   * next poll.
   */
  setPower(mac: string, state: PowerState, error: string | null): void {
    const at = nowIso();
    this.db
      .prepare("UPDATE bmcs SET power_state = ?, power_error = ?, power_checked_at = ? WHERE mac = ?")
      .run(state, error, at, mac);
    this.shared?.writes
      .setPower(mac, state, error, at)
      .catch((err: unknown) => this.shared?.log.warn({ err: (err as Error).message, mac }, "power state not shared"));
  }

  /** BMCs by MAC, `limit` after `afterMac` (the console's power page). */
  page(limit: number, afterMac = ""): BmcRecord[] {
    return (this.db.prepare("SELECT * FROM bmcs WHERE mac > ? ORDER BY mac LIMIT ?").all(afterMac, limit) as Row[]).map(
      toRecord,
    );
  }

  /** The BMCs asked longest ago (never asked first), for the poller. */
  stalest(limit: number): string[] {
    return (
      this.db
        .prepare("SELECT mac FROM bmcs ORDER BY power_checked_at IS NOT NULL, power_checked_at, mac LIMIT ?")
        .all(limit) as { mac: string }[]
    ).map((r) => r.mac);
  }

  /** Power state of these machines' BMCs (machines without one are absent). */
  states(macs: readonly string[]): Map<string, BmcRecord["power"]> {
    const out = new Map<string, BmcRecord["power"]>();
    if (macs.length === 0) return out;
    const rows = this.db
      .prepare(
        `SELECT mac, power_state, power_error, power_checked_at FROM bmcs WHERE mac IN (${macs.map(() => "?").join(",")})`,
      )
      .all(...macs) as Row[];
    for (const r of rows) out.set(r.mac, { state: r.power_state, checkedAt: r.power_checked_at, error: r.power_error });
    return out;
  }

  /**
   * Re-encrypts every password not under the current key. Passwords no loaded key opens are left as they are
   * and named (their BMC calls fail with that reason until the old key is given back or the password is set).
   */
  async rewrap(): Promise<{ rewrapped: number; unreadable: string[] }> {
    const rows = this.db.prepare("SELECT mac, secret FROM bmcs WHERE key_id != ?").all(this.box.currentId) as Pick<
      Row,
      "mac" | "secret"
    >[];
    const unreadable: string[] = [];
    const wrapped: { mac: string; secret: string; keyId: string }[] = [];
    for (const r of rows) {
      let plain: string;
      try {
        plain = this.box.decrypt(r.secret, r.mac);
      } catch {
        unreadable.push(r.mac);
        continue;
      }
      wrapped.push({ mac: r.mac, secret: this.box.encrypt(plain, r.mac), keyId: this.box.currentId });
    }
    if (this.shared) {
      await this.shared.writes.setSecrets(wrapped);
      for (const w of wrapped) await this.shared.refresh("b", w.mac);
    } else {
      const update = this.db.prepare("UPDATE bmcs SET secret = ?, key_id = ? WHERE mac = ?");
      this.db.transaction(() => {
        for (const w of wrapped) update.run(w.secret, w.keyId, w.mac);
      })();
    }
    return { rewrapped: wrapped.length, unreadable };
  }
}
