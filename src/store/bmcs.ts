import type { BmcInput, BmcRecord, PowerState } from "../power/model.ts";
import { defaultPort } from "../power/model.ts";
import { type Db, nowIso } from "./db.ts";
import { NotFoundError } from "./errors.ts";

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

/** Machines' BMCs. Passwords go in and out only through the SecretBox; the row holds ciphertext. */
export class BmcStore {
  constructor(
    private readonly db: Db,
    private box: SecretBox,
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
  put(mac: string, input: BmcInput): BmcRecord {
    const exists = this.db.prepare("SELECT 1 FROM machines WHERE mac = ?").get(mac);
    if (!exists) throw new NotFoundError(`machine ${mac} not found`);
    const { driver, address, port, username, password, ...options } = input;
    const now = nowIso();
    this.db
      .prepare(
        `INSERT INTO bmcs (mac, driver, address, port, username, secret, key_id, options, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(mac) DO UPDATE SET driver = excluded.driver, address = excluded.address, port = excluded.port,
           username = excluded.username, secret = excluded.secret, key_id = excluded.key_id,
           options = excluded.options, power_state = 'unknown', power_error = NULL, power_checked_at = NULL,
           updated_at = excluded.updated_at`,
      )
      .run(
        mac,
        driver,
        address,
        port ?? defaultPort(driver),
        username,
        this.box.encrypt(password, mac),
        this.box.currentId,
        JSON.stringify(options),
        now,
        now,
      );
    return this.require(mac);
  }

  delete(mac: string): void {
    if (this.db.prepare("DELETE FROM bmcs WHERE mac = ?").run(mac).changes === 0)
      throw new NotFoundError(`machine ${mac} has no BMC`);
  }

  /** Records what the BMC last said about power (or why it could not be asked). */
  setPower(mac: string, state: PowerState, error: string | null): void {
    this.db
      .prepare("UPDATE bmcs SET power_state = ?, power_error = ?, power_checked_at = ? WHERE mac = ?")
      .run(state, error, nowIso(), mac);
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
  rewrap(): { rewrapped: number; unreadable: string[] } {
    const rows = this.db.prepare("SELECT mac, secret FROM bmcs WHERE key_id != ?").all(this.box.currentId) as Pick<
      Row,
      "mac" | "secret"
    >[];
    const update = this.db.prepare("UPDATE bmcs SET secret = ?, key_id = ? WHERE mac = ?");
    const unreadable: string[] = [];
    let rewrapped = 0;
    this.db.transaction(() => {
      for (const r of rows) {
        let plain: string;
        try {
          plain = this.box.decrypt(r.secret, r.mac);
        } catch {
          unreadable.push(r.mac);
          continue;
        }
        update.run(this.box.encrypt(plain, r.mac), this.box.currentId, r.mac);
        rewrapped++;
      }
    })();
    return { rewrapped, unreadable };
  }
}
