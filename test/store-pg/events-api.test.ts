/**
 * Two Kindling nodes on one PostgreSQL 15 (the harness's): a boot request one node answers is in the other
 * node's event log, with the node that recorded it, through the API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Running, startTestKindling } from "../helpers/kindling.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

let pgs: TestPostgres;
let a: Running;
let b: Running;

beforeAll(async () => {
  pgs = startPostgres();
  const url = pgs.url(await pgs.createDatabase("events_api"));
  a = await startTestKindling({ database: url, nodeName: "node-a" });
  b = await startTestKindling({ database: url, nodeName: "node-b" });
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  pgs?.stop();
});

interface ApiEvent {
  id: number;
  mac: string | null;
  kind: string;
  node: string | null;
}

async function eventsOf(k: Running, query: string): Promise<ApiEvent[]> {
  const r = await k.api(`/events?${query}`);
  expect(r.status).toBe(200);
  return r.json();
}

/** Polls until `ok` holds (the other node ships every 250 ms); bounded. */
async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("events on nodes sharing PostgreSQL", () => {
  it("a node's events API shows another node's boot request, with that node's name; both see the same log", async () => {
    const M = "52:54:00:dd:00:01";
    expect((await fetch(`${a.url}/ipxe?mac=${M}`)).status).toBe(200);
    const onB = await until(
      "node A's events on node B",
      () => eventsOf(b, `mac=${M}`),
      (es) => es.some((e) => e.kind === "ipxe.request"),
    );
    expect(onB.length).toBeGreaterThan(0);
    expect(new Set(onB.map((e) => e.node))).toEqual(new Set(["node-a"]));
    // One log, PostgreSQL's ids: node A reads the very same rows.
    expect(await eventsOf(a, `mac=${M}`)).toEqual(onB);

    // And the other way round, with a page by id.
    const N = "52:54:00:dd:00:02";
    const last = (await eventsOf(a, "limit=1"))[0]!.id;
    expect((await fetch(`${b.url}/ipxe?mac=${N}`)).status).toBe(200);
    const newer = await until(
      "node B's events on node A",
      () => eventsOf(a, `after=${last}`),
      (es) => es.some((e) => e.mac === N && e.kind === "ipxe.request"),
    );
    expect(newer.every((e) => e.id > last && e.node === "node-b")).toBe(true);

    // A machine's history in the API is the shared log too.
    const machine = await (await a.api(`/machines/${M}`)).json();
    expect(machine.history.map((e: ApiEvent) => e.id)).toEqual(onB.map((e) => e.id));
  });
});
