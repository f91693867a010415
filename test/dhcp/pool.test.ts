/** Lease allocation over a real SQLite store: choice order, binding rules, release, decline, restore. */
import { beforeEach, describe, expect, it } from "vitest";
import { SubnetSchema } from "../../src/dhcp/config.ts";
import { SubnetPool } from "../../src/dhcp/pool.ts";
import { type Db, openDb } from "../../src/store/db.ts";
import { LeaseStore } from "../../src/store/leases.ts";
import { MachineStore } from "../../src/store/machines.ts";

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
let store: LeaseStore;
let clock: number;
let pool: SubnetPool;
const none = new Map<string, string>();

beforeEach(() => {
  db = openDb(":memory:");
  store = new LeaseStore(db);
  clock = 1_000_000;
  pool = new SubnetPool(subnet, store, () => clock);
});

describe("SubnetPool", () => {
  it("hands out addresses across ranges in order and says when it is exhausted", () => {
    const got = [A, B, C].map((mac) => {
      const ip = pool.choose(mac, { reservations: none })!;
      pool.offer(mac, ip, 30_000);
      return ip;
    });
    expect(got).toEqual(["10.0.0.10", "10.0.0.11", "10.0.0.20"]);
    expect(pool.choose(D, { reservations: none })).toBeUndefined();
    expect(pool.stats()).toEqual({ subnet: "10.0.0.0/24", used: 3, free: 0 });
    // Offers expire: the address comes back.
    clock += 31_000;
    expect(pool.choose(D, { reservations: none })).toBeDefined();
  });

  it("gives a client its own lease again, then its requested address, and honours reservations", () => {
    expect(pool.bind(A, "10.0.0.11", 60_000, "a", none)).toMatchObject({ ok: true });
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
    expect(pool.bind(D, "10.0.0.50", 60_000, null, reservations)).toMatchObject({ ok: true });
    expect(pool.bind(B, "10.0.0.10", 60_000, null, reservations)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/reserved/),
    });
  });

  it("refuses to bind an address held by someone else, outside the ranges or outside the subnet", () => {
    expect(pool.bind(A, "10.0.0.10", 60_000, null, none).ok).toBe(true);
    expect(pool.bind(B, "10.0.0.10", 60_000, null, none)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/held by/),
    });
    expect(pool.bind(B, "10.0.0.99", 60_000, null, none)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/outside the ranges/),
    });
    expect(pool.bind(B, "192.168.1.1", 60_000, null, none)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not in/),
    });
    clock += 61_000;
    expect(pool.bind(B, "10.0.0.10", 60_000, null, none).ok).toBe(true);
  });

  it("persists binds, releases and declines, and restores them in a new pool", () => {
    pool.bind(A, "10.0.0.10", 60_000, "node-a", none);
    pool.bind(B, "10.0.0.11", 60_000, null, none);
    expect(pool.release(B, "10.0.0.11")).toBe(true);
    expect(pool.release(A, "10.0.0.11")).toBe(false);
    expect(pool.decline(C, "10.0.0.20", 600_000)).toBe(true);
    expect(store.all().map((l) => [l.ip, l.mac, l.state, l.hostname])).toEqual([
      ["10.0.0.10", A, "bound", "node-a"],
      ["10.0.0.11", B, "released", null],
      ["10.0.0.20", C, "declined", null],
    ]);
    const again = new SubnetPool(subnet, store, () => clock);
    for (const l of store.all()) again.restore(l);
    expect(again.current(A)?.ip).toBe("10.0.0.10");
    // The declined address stays out of the pool until its quarantine ends; the released one is free.
    expect(again.choose(D, { reservations: none })).toBe("10.0.0.11");
    again.offer(D, "10.0.0.11", 30_000);
    expect(again.choose(C, { reservations: none })).toBeUndefined();
    clock += 600_001;
    expect(again.choose(C, { reservations: none })).toBe("10.0.0.20");
  });

  it("reads static reservations from machines.ip", () => {
    const machines = new MachineStore(db);
    machines.create({ mac: A, ip: "10.0.0.77", labels: {}, metadata: {} });
    expect(store.reservations()).toEqual(new Map([["10.0.0.77", A]]));
    expect(pool.choose(A, { reservations: store.reservations() })).toBe("10.0.0.77");
  });

  it("answers a full pool without rescanning it until an address can be free again", () => {
    for (const mac of [A, B, C]) pool.offer(mac, pool.choose(mac, { reservations: none })!, 30_000);
    expect(pool.choose(D, { reservations: none })).toBeUndefined();
    // A release frees an address at once: the memo of the failed scan must not hide it.
    expect(pool.bind(A, "10.0.0.10", 60_000, null, none)).toMatchObject({ ok: true });
    expect(pool.release(A, "10.0.0.10")).toBe(true);
    expect(pool.choose(D, { reservations: none })).toBe("10.0.0.10");
    pool.offer(D, "10.0.0.10", 30_000);
    expect(pool.choose("02:00:00:00:00:0e", { reservations: none })).toBeUndefined();
    // So does an offer the client turned down.
    pool.cancelOffer(B);
    expect(pool.choose("02:00:00:00:00:0e", { reservations: none })).toBe("10.0.0.11");
    pool.offer("02:00:00:00:00:0e", "10.0.0.11", 30_000);
    // Full again; within the recheck interval a reservation change is not seen, after it, it is.
    expect(pool.choose("02:00:00:00:00:0f", { reservations: none })).toBeUndefined();
    clock += 1_001;
    expect(pool.choose(C, { reservations: new Map([["10.0.0.20", C]]) })).toBe("10.0.0.20");
  });

  it("fills a /16 completely, refuses new clients, and gives the first address back once offers expire", () => {
    const big = new SubnetPool(
      SubnetSchema.parse({
        cidr: "10.8.0.0/16",
        ranges: [{ start: "10.8.0.1", end: "10.8.255.254" }],
        leaseSeconds: 60,
      }),
      store,
      () => clock,
    );
    for (let i = 0; i < 65534; i++) {
      const mac = `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
      big.offer(mac, big.choose(mac, { reservations: none })!, 30_000);
    }
    let answered = 0;
    for (let i = 0; i < 1_000; i++)
      if (big.choose(`02:ff:00:00:${(i >> 8) & 255}:${i & 255}`, { reservations: none })) answered++;
    expect(answered).toBe(0);
    clock += 30_001;
    expect(big.choose("02:ff:ff:ff:ff:ff", { reservations: none })).toBe("10.8.0.1");
  });

  it("cancels an offer the client turned down", () => {
    pool.offer(A, pool.choose(A, { reservations: none })!, 30_000);
    pool.cancelOffer(A);
    expect(pool.current(A)).toBeUndefined();
    expect(pool.stats().used).toBe(0);
  });
});
