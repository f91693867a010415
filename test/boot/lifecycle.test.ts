import { describe, expect, it } from "vitest";
import { type LifecycleEvent, nextState, overdueInstalls } from "../../src/boot/lifecycle.ts";
import type { MachineState } from "../../src/model/machine.ts";

describe("nextState", () => {
  it.each<[MachineState, LifecycleEvent, MachineState]>([
    ["discovered", "assign", "ready"],
    ["ready", "unassign", "discovered"],
    ["ready", "install-started", "installing"],
    ["failed", "install-started", "installing"],
    ["discovered", "install-started", "installing"],
    ["discovered", "booted", "running"],
    ["installing", "install-done", "installed"],
    ["installing", "install-failed", "failed"],
    ["installed", "first-boot", "running"],
    ["running", "first-boot", "running"],
    ["ready", "booted", "running"],
    ["installed", "reinstall", "ready"],
    ["running", "reinstall", "ready"],
    ["failed", "reinstall", "ready"],
    ["installing", "deadline", "failed"],
    ["installed", "assign", "installed"],
  ])("%s + %s → %s", (from, event, to) => expect(nextState(from, event, true)).toEqual({ ok: true, to }));

  it.each<[MachineState, LifecycleEvent]>([
    ["ready", "install-done"],
    ["discovered", "install-done"],
    ["installed", "install-started"],
    ["running", "install-failed"],
    ["ready", "first-boot"],
    ["installed", "booted"],
    ["ready", "deadline"],
    ["discovered", "reinstall"],
  ])("%s + %s is refused", (from, event) => {
    const t = nextState(from, event, true);
    expect(t.ok).toBe(false);
    if (!t.ok) expect(t.reason).toContain(from);
  });

  it("reinstall and assign need a profile", () => {
    expect(nextState("installed", "reinstall", false)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("profile"),
    });
    expect(nextState("discovered", "assign", false).ok).toBe(false);
  });
});

describe("overdueInstalls", () => {
  const at = (s: string) => ({ state: "installing" as MachineState, stateChangedAt: s });
  it("finds installs older than the deadline and nothing else", () => {
    const now = Date.parse("2026-01-01T01:00:00Z");
    const old = at("2026-01-01T00:00:00Z");
    const fresh = at("2026-01-01T00:59:00Z");
    const done = { state: "installed" as MachineState, stateChangedAt: "2025-01-01T00:00:00Z" };
    expect(overdueInstalls([old, fresh, done], now, 1800)).toEqual([old]);
  });
});
