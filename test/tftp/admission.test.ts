import { describe, expect, it } from "vitest";
import { Slots } from "../../src/tftp/admission.ts";

/** A transfer stand-in: its name and how far past its timeout it is (< 0: still healthy). */
type T = { name: string; overdue: number };
const overdue = (t: T) => t.overdue;

function slots(maxTransfers: number, maxTransfersPerClient: number, held: Record<string, number[]>) {
  const s = new Slots<T>({ maxTransfers, maxTransfersPerClient });
  for (const [client, list] of Object.entries(held))
    list.forEach((o, i) => s.add(client, { name: `${client}#${i}`, overdue: o }));
  return s;
}

describe("transfer slots", () => {
  it("admits below both caps", () => {
    expect(slots(10, 2, { a: [-1] }).decide("a", overdue)).toEqual({ admit: true });
  });

  it("at a client's own cap, drops unless one of its own transfers is stalled, then replaces the most stalled", () => {
    expect(slots(10, 2, { a: [-1, -5] }).decide("a", overdue)).toEqual({ admit: false, full: "client" });
    const d = slots(10, 2, { a: [3, 40], b: [900] }).decide("a", overdue);
    expect(d).toEqual({ admit: true, evict: { name: "a#1", overdue: 40 } });
  });

  it("on a full server, takes a stalled slot from the heaviest client, never from one holding no more than the asker", () => {
    // c holds the most; its stalled transfer gives way even though b's is more stalled.
    const s = slots(6, 4, { b: [500, -1], c: [5, -1, -1, -1] });
    expect(s.decide("new", overdue)).toEqual({ admit: true, evict: { name: "c#0", overdue: 5 } });
    // Heaviest client has nothing stalled: the next heaviest that does gives way.
    expect(slots(6, 4, { b: [500, -1], c: [-1, -1, -1, -1] }).decide("new", overdue)).toMatchObject({
      evict: { name: "b#0" },
    });
    // b asks: only clients holding more than b's 2 count, and c has nothing stalled.
    expect(slots(6, 4, { b: [500, -1], c: [-1, -1, -1, -1] }).decide("b", overdue)).toEqual({
      admit: false,
      full: "server",
    });
    // Equal shares: nobody gives way to a client that already holds as many.
    expect(slots(4, 3, { a: [100, 100], b: [100, 100] }).decide("a", overdue)).toEqual({
      admit: false,
      full: "server",
    });
  });

  it("on a full server of healthy transfers, drops the request (the client retries)", () => {
    expect(slots(2, 2, { a: [-1], b: [-1] }).decide("c", overdue)).toEqual({ admit: false, full: "server" });
  });

  it("counts per client and releases idempotently", () => {
    const s = new Slots<T>({ maxTransfers: 3, maxTransfersPerClient: 1 });
    const t = { name: "x", overdue: -1 };
    s.add("a", t);
    s.add("a", t);
    expect(s.size).toBe(1);
    expect(s.decide("a", overdue)).toEqual({ admit: false, full: "client" });
    s.delete("a", t);
    s.delete("a", t);
    expect(s.size).toBe(0);
    expect(s.decide("a", overdue)).toEqual({ admit: true });
  });
});
