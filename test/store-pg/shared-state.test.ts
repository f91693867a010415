import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Running, startTestKindling, tempDir } from "../helpers/kindling.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

/**
 * Machines, profiles and groups shared by two nodes on one real PostgreSQL 15: each node reads its own
 * replica, writes go to PostgreSQL first, and a change on one node reaches the other.
 */
let pgs: TestPostgres;
beforeAll(() => {
  pgs = startPostgres();
});
afterAll(() => pgs?.stop());

const PROFILE = { localDisk: true };

/** Every node of one site opens the same BMC passwords: one key for all (docs/power.md). */
const BMC_KEY = Buffer.alloc(32, 7).toString("base64");

async function pair(): Promise<{ a: Running; b: Running; url: string }> {
  const url = pgs.url(await pgs.createDatabase("shared"));
  const a = await startTestKindling({ database: url, nodeName: "node-a", power: { key: BMC_KEY } });
  const b = await startTestKindling({ database: url, nodeName: "node-b", power: { key: BMC_KEY } });
  return { a, b, url };
}

/** Polls `fn` until it returns a value (bounded): a change reaches the other node when its notice does. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const machine = async (k: Running, mac: string) => {
  const r = await k.api(`/machines/${mac}`);
  return r.status === 200 ? r.json() : undefined;
};

describe("shared state on PostgreSQL", () => {
  it("a machine, a profile and a group written on one node are read on the other, and the boot answer follows", async () => {
    const { a, b } = await pair();
    try {
      expect((await b.api("/profiles/web", { method: "PUT", json: PROFILE })).status).toBe(201);
      const mac = "52:54:00:aa:00:01";
      const reg = await a.api("/machines", { method: "POST", json: { mac, profile: "web" } });
      expect(reg.status).toBe(201);
      const onB = await until("the machine on node B", async () => {
        const m = await machine(b, mac);
        return m?.state === "ready" ? m : undefined;
      });
      expect(onB.profile).toBe("web");
      // B's /ipxe answers from its replica: the profile B wrote and the machine A registered.
      const script = await (await fetch(`${b.url}/ipxe?mac=${mac}`)).text();
      expect(script).toContain("#!ipxe");
      expect(script).not.toContain("not registered");

      expect(
        (await b.api("/groups", { method: "POST", json: { name: "rack1", profile: "web", selector: {} } })).status,
      ).toBe(201);
      await until("the group on node A", async () =>
        (await a.api("/groups/rack1")).status === 200 ? true : undefined,
      );
      // Deleting on A reaches B.
      expect((await a.api("/groups/rack1", { method: "DELETE" })).status).toBe(204);
      await until("the group gone on node B", async () =>
        (await b.api("/groups/rack1")).status === 404 ? true : undefined,
      );
      // Both nodes' writes are in each machine's shared history once shipped; here: the profile in use is
      // refused on either node, because PostgreSQL counts the machines.
      const del = await a.api("/profiles/web", { method: "DELETE" });
      expect(del.status).toBe(409);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("a BMC set through one node is the machine's BMC on the other (password never shown), and removed with it", async () => {
    const { a, b } = await pair();
    try {
      const mac = "52:54:00:aa:00:08";
      await a.api("/machines", { method: "POST", json: { mac } });
      const bmc = { driver: "redfish", address: "127.0.0.1", port: 9, username: "admin", password: "s3cret-pw" };
      // B writes right after A registered: B decides from PostgreSQL's row even if its copy lags.
      expect((await b.api(`/machines/${mac}/bmc`, { method: "PUT", json: bmc })).status).toBe(200);
      const onA = await until("the BMC on node A", async () => {
        const r = await a.api(`/machines/${mac}/bmc`);
        return r.status === 200 ? r.text() : undefined;
      });
      expect(JSON.parse(onA)).toMatchObject({ driver: "redfish", address: "127.0.0.1", username: "admin" });
      expect(onA).not.toContain("s3cret-pw");
      expect((await b.api(`/machines/${mac}`, { method: "DELETE" })).status).toBe(204);
      await until("the BMC gone on node A", async () =>
        (await a.api(`/machines/${mac}/bmc`)).status === 404 ? true : undefined,
      );
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("a machine discovered a moment ago can be assigned and given a BMC at once (its sighting ships first)", async () => {
    const { a, b } = await pair();
    try {
      await a.api("/profiles/web", { method: "PUT", json: PROFILE });
      for (const [i, mac] of ["52:54:00:aa:00:0a", "52:54:00:aa:00:0b"].entries()) {
        expect((await fetch(`${a.url}/ipxe?mac=${mac}`)).status).toBe(200);
        const r =
          i === 0
            ? await a.api(`/machines/${mac}`, { method: "PATCH", json: { profile: "web" } })
            : await a.api(`/machines/${mac}/bmc`, {
                method: "PUT",
                json: { driver: "ipmi", address: "127.0.0.1", username: "u", password: "p" },
              });
        expect(r.status).toBe(200);
      }
      expect((await until("the assignment on B", () => machine(b, "52:54:00:aa:00:0a"))).state).toBe("ready");
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("two nodes deleting one machine at once: one succeeds, the other hears it is gone", async () => {
    const { a, b } = await pair();
    try {
      await a.api("/profiles/web", { method: "PUT", json: PROFILE });
      const mac = "52:54:00:aa:00:02";
      await a.api("/machines", { method: "POST", json: { mac, profile: "web" } });
      await until("the machine on node B", () => machine(b, mac));
      // Both delete at once: exactly one succeeds, the other is told it is gone.
      const [ra, rb] = await Promise.all([
        a.api(`/machines/${mac}`, { method: "DELETE" }),
        b.api(`/machines/${mac}`, { method: "DELETE" }),
      ]);
      expect([ra.status, rb.status].sort()).toEqual([204, 404]);
      await until("the machine gone on both", async () =>
        (await machine(a, mac)) === undefined && (await machine(b, mac)) === undefined ? true : undefined,
      );
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("an address reserved on two nodes at once for two machines: one wins, the other is a conflict naming the address", async () => {
    const { a, b } = await pair();
    try {
      const results = await Promise.all(
        [
          [a, "52:54:00:aa:00:03"],
          [b, "52:54:00:aa:00:04"],
        ].map(([k, mac]) => (k as Running).api("/machines", { method: "POST", json: { mac, ip: "10.9.0.50" } })),
      );
      expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
      const loser = results.find((r) => r.status === 409)!;
      expect((await loser.json()).error).toMatch(/10\.9\.0\.50/);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("a node that was down catches up on start; a node that had its own machines brings them along", async () => {
    const url = pgs.url(await pgs.createDatabase("catchup"));
    // A node that ran on SQLite alone, then moves to PostgreSQL.
    const soloDir = tempDir();
    const solo = await startTestKindling({ database: undefined }, soloDir);
    await solo.api("/profiles/mine", { method: "PUT", json: PROFILE });
    await solo.api("/machines", { method: "POST", json: { mac: "52:54:00:aa:00:05", profile: "mine" } });
    await solo.stop({ keepData: true });

    const a = await startTestKindling({ database: url, nodeName: "node-a" }, soloDir);
    const bDir = tempDir();
    let b = await startTestKindling({ database: url, nodeName: "node-b" }, bDir);
    try {
      expect((await machine(b, "52:54:00:aa:00:05"))?.profile).toBe("mine");
      await b.stop({ keepData: true });
      // Changed while B is down.
      await a.api("/machines/52:54:00:aa:00:05", { method: "DELETE" });
      await a.api("/machines", { method: "POST", json: { mac: "52:54:00:aa:00:06" } });
      b = await startTestKindling({ database: url, nodeName: "node-b" }, bDir);
      expect(await machine(b, "52:54:00:aa:00:05")).toBeUndefined();
      expect((await machine(b, "52:54:00:aa:00:06"))?.state).toBe("discovered");
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("while PostgreSQL is down: reads and /ipxe answer from the replica, writes are refused with 503, and work again after", async () => {
    const url = pgs.url(await pgs.createDatabase("outage"));
    const a = await startTestKindling({ database: url, nodeName: "node-a" });
    try {
      await a.api("/profiles/web", { method: "PUT", json: PROFILE });
      const mac = "52:54:00:aa:00:07";
      await a.api("/machines", { method: "POST", json: { mac, profile: "web" } });
      const before = await (await fetch(`${a.url}/ipxe?mac=${mac}`)).text();
      pgs.stopServer();
      try {
        const write = await a.api(`/machines/${mac}`, { method: "PATCH", json: { hostname: "web-1" } });
        expect(write.status).toBe(503);
        expect((await write.json()).error).toMatch(/database/);
        expect(write.headers.get("retry-after")).toBe("5");
        const health = await fetch(`${a.url}/healthz`);
        expect(health.status).toBe(503);
        expect(((await health.json()) as { database: unknown }).database).toMatchObject({
          engine: "postgres",
          reachable: false,
        });
        expect((await machine(a, mac))?.state).toBe("ready");
        const during = await fetch(`${a.url}/ipxe?mac=${mac}`);
        expect(during.status).toBe(200);
        // The request's event waits in the node's file, and the metrics say so.
        const metrics = await (await fetch(`${a.url}/metrics`)).text();
        expect(metrics).toMatch(/^kindling_unshipped\{kind="events"\} [1-9]/m);
        // The same boot answer (the signed URLs' expiry may differ).
        expect((await during.text()).split("\n")[0]).toBe(before.split("\n")[0]);
      } finally {
        pgs.start();
      }
      const after = await until("writes accepted again", async () => {
        const r = await a.api(`/machines/${mac}`, { method: "PATCH", json: { hostname: "web-1" } });
        return r.status === 200 ? r.json() : undefined;
      });
      expect(after.hostname).toBe("web-1");
      await until(
        "the outage's events shipped",
        async () =>
          /^kindling_unshipped\{kind="events"\} 0$/m.test(await (await fetch(`${a.url}/metrics`)).text()) || undefined,
      );
      // The replica listens again on its own backoff, and copies everything it may have missed.
      await until("the replica listening again", async () => {
        const health = (await (await fetch(`${a.url}/healthz`)).json()) as {
          database: { replication: { listening: boolean } };
        };
        return health.database.replication.listening || undefined;
      });
      expect(await (await fetch(`${a.url}/metrics`)).text()).toMatch(/^kindling_replica_listening 1$/m);
    } finally {
      await a.stop();
    }
  });
});
