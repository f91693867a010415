/** Lease allocation over the SQLite lease repository: choice order, binding rules, release, decline, restore. */
import { beforeEach, describe, expect, it } from "vitest";
import { SubnetSchema } from "../../src/dhcp/config.ts";
import { SubnetPool } from "../../src/dhcp/pool.ts";
import { type Db, openDb } from "../../src/store/db.ts";
import { LeaseStore } from "../../src/store/leases.ts";
import { MachineStore } from "../../src/store/machines.ts";
import { SqliteLeaseRepository } from "../../src/store/sqlite-lease-repository.ts";

const subnet = SubnetSchema.parse({
  cidr: "10.0.0.0/24",
  ranges: [
    { start: "10.0.0.10", end: "10.0.0.11" },
    { start: "10.0.0.20", end: "10.0.0.20" },
  ],
  leaseSeconds: 60,
});
const A = "02:00:00:00:00:0a";
const B = "02:00:00:00:00:0b";
const C = "02:00:00:00:00:0c";
const D = "02:00:00:00:00:0d";

let db: Db;
/** Reads the file (what a restart finds) and the reservations. */
let store: LeaseStore;
let repo: SqliteLeaseRepository;
let clock: number;
let pool: SubnetPool;
const none = new Map<string, string>();

beforeEach(() => {
  db = openDb(":memory:");
  store = new LeaseStore(db);
  repo = new SqliteLeaseRepository(db);
  clock = 1_000_000;
  pool = new SubnetPool(subnet, repo, () => clock);
});

describe("SubnetPool", () => {
  it("hands out addresses across ranges in order and says when it is exhausted", async () => {
    const got: string[] = [];
    for (const mac of [A, B, C]) {
      const ip = pool.choose(mac, { reservations: none })!;
      expect((await pool.bind(mac, ip, 60_000, null, none)).ok).toBe(true);
      got.push(ip);
    }
    expect(got).toEqual(["10.0.0.10", "10.0.0.11", "10.0.0.20"]);
    expect(pool.choose(D, { reservations: none })).toBeUndefined();
    expect(pool.stats()).toEqual({ subnet: "10.0.0.0/24", used: 3, free: 0, quarantined: 0 });
    // Leases expire: the address comes back.
    clock += 61_000;
    expect(pool.choose(D, { reservations: none })).toBeDefined();
  });

  it("once nothing is free, a new client takes over the oldest offer; the first REQUEST wins", async () => {
    for (const mac of [A, B, C]) pool.offer(mac, pool.choose(mac, { reservations: none })!, 30_000);
    expect(pool.choose(D, { reservations: none })).toBe("10.0.0.10");
    pool.offer(D, "10.0.0.10", 30_000);
    expect(pool.current(A)).toBeUndefined();
    // Next oldest: B's. A reserved address is never taken from its holder.
    const reservations = new Map([["10.0.0.11", B]]);
    expect(pool.choose("02:00:00:00:00:0e", { reservations })).toBe("10.0.0.20");
    // A, whose offer went to D, asks anyway: an offer is no reservation, so A binds it and D's REQUEST fails.
    expect((await pool.bind(A, "10.0.0.10", 60_000, null, none)).ok).toBe(true);
    expect(await pool.bind(D, "10.0.0.10", 60_000, null, none)).toMatchObject({ ok: false, reason: /held by/ });
    // Bound leases are never taken over.
    for (const mac of [B, C]) expect((await pool.bind(mac, pool.current(mac)!.ip, 60_000, null, none)).ok).toBe(true);
    expect(pool.choose(D, { reservations: none })).toBeUndefined();
  });

  it("gives a client its own lease again, then its requested address, and honours reservations", async () => {
    expect(await pool.bind(A, "10.0.0.11", 60_000, "a", none)).toMatchObject({ ok: true });
    expect(pool.choose(A, { reservations: none })).toBe("10.0.0.11");
    expect(pool.choose(B, { requested: "10.0.0.20", reservations: none })).toBe("10.0.0.20");
    expect(pool.choose(B, { requested: "10.0.0.11", reservations: none })).toBe("10.0.0.10");
    const reservations = new Map([
      ["10.0.0.10", C],
      ["10.0.0.50", D],
    ]);
    expect(pool.choose(B, { reservations })).toBe("10.0.0.20");
    // A reservation may sit outside the ranges, as long as it is in the subnet.
    expect(pool.choose(D, { reservations })).toBe("10.0.0.50");
    expect(await pool.bind(D, "10.0.0.50", 60_000, null, reservations)).toMatchObject({ ok: true });
    expect(await pool.bind(B, "10.0.0.10", 60_000, null, reservations)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/reserved/),
    });
  });

  it("refuses to bind an address held by someone else, outside the ranges or outside the subnet", async () => {
    expect((await pool.bind(A, "10.0.0.10", 60_000, null, none)).ok).toBe(true);
    expect(await pool.bind(B, "10.0.0.10", 60_000, null, none)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/held by/),
    });
    expect(await pool.bind(B, "10.0.0.99", 60_000, null, none)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/outside the ranges/),
    });
    expect(await pool.bind(B, "192.168.1.1", 60_000, null, none)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not in/),
    });
    clock += 61_000;
    expect((await pool.bind(B, "10.0.0.10", 60_000, null, none)).ok).toBe(true);
  });

  it("persists binds, releases and declines, and restores them in a new pool", async () => {
    await pool.bind(A, "10.0.0.10", 60_000, "node-a", none);
    await pool.bind(B, "10.0.0.11", 60_000, null, none);
    expect(await pool.release(B, "10.0.0.11")).toBe(true);
    expect(await pool.release(A, "10.0.0.11")).toBe(false);
    pool.offer(C, "10.0.0.20", 30_000);
    expect(await pool.decline(C, "10.0.0.20", 600_000, 1)).toEqual({ ok: true, released: undefined });
    expect(store.all().map((l) => [l.ip, l.mac, l.state, l.hostname])).toEqual([
      ["10.0.0.10", A, "bound", "node-a"],
      ["10.0.0.11", B, "released", null],
      ["10.0.0.20", C, "declined", null],
    ]);
    const again = new SubnetPool(subnet, new SqliteLeaseRepository(db), () => clock);
    for (const l of store.all()) again.restore(l);
    expect(again.current(A)?.ip).toBe("10.0.0.10");
    // The declined address stays out of the pool until its quarantine ends; the released one is free.
    expect(again.choose(D, { reservations: none })).toBe("10.0.0.11");
    await again.bind(D, "10.0.0.11", 60_000, null, none);
    expect(again.choose(C, { reservations: none })).toBeUndefined();
    clock += 600_001;
    expect(again.choose(C, { reservations: none })).toBe("10.0.0.20");
  });

  it("reads static reservations from machines.ip", async () => {
    const machines = new MachineStore(db);
    machines.create({ mac: A, ip: "10.0.0.77", labels: {}, metadata: {} }, "discovered");
    expect(store.reservations()).toEqual(new Map([["10.0.0.77", A]]));
    expect(pool.choose(A, { reservations: store.reservations() })).toBe("10.0.0.77");
  });

  it("answers a full pool without rescanning it until an address can be free again", async () => {
    const E = "02:00:00:00:00:0e";
    for (const mac of [A, B, C]) await pool.bind(mac, pool.choose(mac, { reservations: none })!, 60_000, null, none);
    expect(pool.choose(D, { reservations: none })).toBeUndefined();
    // A release frees an address at once: the memo of the failed scan must not hide it.
    expect(await pool.release(A, "10.0.0.10")).toBe(true);
    expect(pool.choose(D, { reservations: none })).toBe("10.0.0.10");
    await pool.bind(D, "10.0.0.10", 60_000, null, none);
    expect(pool.choose(E, { reservations: none })).toBeUndefined();
    // So does an offer the client turned down.
    expect(await pool.release(B, "10.0.0.11")).toBe(true);
    pool.offer(E, "10.0.0.11", 30_000);
    pool.cancelOffer(E);
    expect(pool.choose(E, { reservations: none })).toBe("10.0.0.11");
    await pool.bind(E, "10.0.0.11", 60_000, null, none);
    // Full again; within the recheck interval a reservation change is not seen, after it, it is.
    expect(pool.choose("02:00:00:00:00:0f", { reservations: none })).toBeUndefined();
    clock += 1_001;
    expect(pool.choose(C, { reservations: new Map([["10.0.0.20", C]]) })).toBe("10.0.0.20");
  });

  it("fills a /16 completely, refuses new clients, and gives the first address back once leases expire", async () => {
    const big = new SubnetPool(
      SubnetSchema.parse({
        cidr: "10.8.0.0/16",
        ranges: [{ start: "10.8.0.1", end: "10.8.255.254" }],
        leaseSeconds: 60,
      }),
      repo,
      () => clock,
    );
    // Binds in bursts, as REQUESTs arrive: each burst is one commit (awaiting each alone would wait out a
    // commit delay per lease).
    const burst: Promise<unknown>[] = [];
    for (let i = 0; i < 65534; i++) {
      const mac = `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
      burst.push(big.bind(mac, big.choose(mac, { reservations: none })!, 30_000, null, none));
      if (burst.length === 64) await Promise.all(burst.splice(0));
    }
    await Promise.all(burst);
    let answered = 0;
    for (let i = 0; i < 1_000; i++)
      if (big.choose(`02:ff:00:00:${(i >> 8) & 255}:${i & 255}`, { reservations: none })) answered++;
    expect(answered).toBe(0);
    clock += 30_001;
    expect(big.choose("02:ff:ff:ff:ff:ff", { reservations: none })).toBe("10.8.0.1");
  });

  it("takes over the offers of a /16 full of them, oldest first", async () => {
    const big = new SubnetPool(
      SubnetSchema.parse({ cidr: "10.8.0.0/16", ranges: [{ start: "10.8.0.1", end: "10.8.255.254" }] }),
      repo,
      () => clock,
    );
    const macOf = (i: number) =>
      `02:00:${[16, 8, 0].map((s) => ((i >> s) & 255).toString(16).padStart(2, "0")).join(":")}:00`;
    // Twice the pool: the second round takes every address over, in the order the first round got them.
    for (let i = 0; i < 2 * 65534; i++) {
      const ip = big.choose(macOf(i), { reservations: none })!;
      if (i >= 65534) expect(ip).toBe(big.current(macOf(i - 65534))?.ip);
      big.offer(macOf(i), ip, 30_000);
    }
    expect(big.stats()).toMatchObject({ used: 65534, free: 0 });
  });

  it("counts a DECLINE only from the client the address is offered or leased to", async () => {
    expect(await pool.decline(A, "10.0.0.10", 600_000, 1)).toMatchObject({
      ok: false,
      reason: /not offered or leased/,
    });
    pool.offer(A, "10.0.0.10", 30_000);
    expect(await pool.decline(B, "10.0.0.10", 600_000, 1)).toMatchObject({
      ok: false,
      reason: /not offered or leased/,
    });
    expect(await pool.decline(A, "10.0.0.99", 600_000, 1)).toMatchObject({ ok: false, reason: /outside the ranges/ });
    expect(await pool.decline(A, "10.0.0.10", 600_000, 1)).toEqual({ ok: true, released: undefined });
    expect(pool.stats().quarantined).toBe(1);
    // Quarantined: A is not given it again, and a second DECLINE of it counts for nothing.
    expect(pool.choose(A, { reservations: none })).toBe("10.0.0.11");
    expect((await pool.decline(A, "10.0.0.10", 600_000, 1)).ok).toBe(false);
    // An expired lease is no longer A's to decline.
    await pool.bind(A, "10.0.0.11", 60_000, null, none);
    clock += 60_001;
    expect((await pool.decline(A, "10.0.0.11", 600_000, 1)).ok).toBe(false);
  });

  it("quarantines at most `max` addresses: the oldest quarantine ends first", async () => {
    for (const mac of [A, B, C]) await pool.bind(mac, pool.choose(mac, { reservations: none })!, 60_000, null, none);
    expect(await pool.decline(A, "10.0.0.10", 600_000, 2)).toEqual({ ok: true, released: undefined });
    clock += 1;
    expect(await pool.decline(B, "10.0.0.11", 600_000, 2)).toEqual({ ok: true, released: undefined });
    clock += 1;
    expect(await pool.decline(C, "10.0.0.20", 600_000, 2)).toEqual({ ok: true, released: "10.0.0.10" });
    expect(pool.stats().quarantined).toBe(2);
    expect(store.all().find((l) => l.ip === "10.0.0.10")).toMatchObject({ state: "released", mac: "" });
    expect(pool.choose(D, { reservations: none })).toBe("10.0.0.10");
    // After a restart the order is kept: 10.0.0.11 (declined first) ends next.
    const again = new SubnetPool(subnet, new SqliteLeaseRepository(db), () => clock);
    for (const l of store.all().sort((a, b) => a.updatedAt - b.updatedAt)) again.restore(l);
    await again.bind(D, "10.0.0.10", 60_000, null, none);
    expect(await again.decline(D, "10.0.0.10", 600_000, 2)).toEqual({ ok: true, released: "10.0.0.11" });
    // Quarantines end on time, too.
    expect(again.stats().quarantined).toBe(2);
    clock += 600_000;
    expect(again.stats().quarantined).toBe(0);
  });

  it("a real client still gets an address after 64,000 spoofed DECLINEs", async () => {
    const c24 = new SubnetPool(
      SubnetSchema.parse({ cidr: "10.9.0.0/24", ranges: [{ start: "10.9.0.10", end: "10.9.0.250" }] }),
      repo,
      () => clock,
    );
    let accepted = 0;
    for (let i = 0; i < 64_000; i++) {
      const mac = `02:aa:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}:00`;
      if ((await c24.decline(mac, `10.9.0.${10 + (i % 241)}`, 600_000, 24)).ok) accepted++;
    }
    expect(accepted).toBe(0);
    expect(c24.stats().quarantined).toBe(0);
    expect(c24.choose(A, { reservations: none })).toBe("10.9.0.10");
  });

  it("cancels an offer the client turned down", async () => {
    pool.offer(A, pool.choose(A, { reservations: none })!, 30_000);
    pool.cancelOffer(A);
    expect(pool.current(A)).toBeUndefined();
    expect(pool.stats().used).toBe(0);
  });
});
