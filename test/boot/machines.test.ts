import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Machines } from "../../src/boot/machines.ts";
import { InvalidFieldError } from "../../src/model/errors.ts";
import { ProfileCreateSchema } from "../../src/model/profile.ts";
import { ConflictError, NotFoundError } from "../../src/store/errors.ts";
import { Store } from "../../src/store/index.ts";
import { freePort, tempDir } from "../helpers/kindling.ts";
import { machinesFor } from "../helpers/machines.ts";

const A = "52:54:00:00:0a:01";
const B = "52:54:00:00:0a:02";
const web = ProfileCreateSchema.parse({ name: "web", boot: { kernel: "k", initrd: ["i"] } });

let store: Store;
let machines: Machines;
const kinds = async (mac: string) => (await store.events.list({ mac, limit: 50 })).map((e) => e.kind).reverse();

beforeEach(() => {
  store = Store.open(tempDir());
  store.profiles.put(web);
  machines = machinesFor(store, { discoveriesPerMinute: 2 });
});
afterEach(() => store.close());

describe("the machine owner", () => {
  it("registers a machine ready with a profile and discovered without, each an event naming the cause", async () => {
    expect((await machines.register({ mac: A, profile: "web", labels: {}, metadata: {} }, { by: "api" })).state).toBe(
      "ready",
    );
    expect((await machines.register({ mac: B, labels: {}, metadata: {} }, { by: "ui" })).state).toBe("discovered");
    expect((await store.events.list({ mac: B, limit: 5 }))[0]).toMatchObject({
      kind: "machine.registered",
      detail: { via: "ui" },
    });
  });

  it("refuses an unknown profile by field and stores nothing", async () => {
    const err = await machines
      .register({ mac: A, profile: "nope", labels: {}, metadata: {} }, { by: "api" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidFieldError);
    expect((err as InvalidFieldError).field).toBe("profile");
    expect(store.machines.get(A)).toBeUndefined();
    await machines.register({ mac: A, labels: {}, metadata: {} }, { by: "api" });
    await expect(machines.update(A, { profile: "nope" }, { by: "api" })).rejects.toBeInstanceOf(InvalidFieldError);
    await expect(
      machines.putGroup(
        { name: "g", profile: "nope", description: "", selector: {}, metadata: {}, labels: {} },
        { by: "api" },
      ),
    ).rejects.toBeInstanceOf(InvalidFieldError);
    expect(store.machines.require(A).profile).toBeNull();
  });

  it("takes a machine through install and back by the lifecycle rules, stamping the install", async () => {
    await machines.register({ mac: A, labels: {}, metadata: {} }, { by: "api" });
    expect((await machines.update(A, { profile: "web" }, { by: "ui" })).state).toBe("ready");
    await machines.report(A, "install-started", { by: "report", ip: "10.0.0.5" });
    const done = await machines.report(A, "install-done", { by: "report" });
    expect(done.state).toBe("installed");
    expect(done.installedAt).not.toBeNull();
    // Clearing the profile of an installed machine keeps its state; an illegal report changes nothing.
    await expect(machines.report(A, "install-started", { by: "report" })).rejects.toBeInstanceOf(ConflictError);
    expect((await machines.reinstall(A, { by: "api" })).state).toBe("ready");
    expect(await kinds(A)).toEqual([
      "machine.registered",
      "machine.updated",
      "lifecycle.assign",
      "lifecycle.install-started",
      "lifecycle.install-done",
      "lifecycle.reinstall",
    ]);
  });

  it("changes nothing when a transition is refused", async () => {
    await machines.register({ mac: A, profile: "web", labels: {}, metadata: {} }, { by: "api" });
    await machines.report(A, "install-started", { by: "report" });
    // Unassigning an install in progress is refused: neither the profile nor the hostname is written.
    await expect(machines.update(A, { profile: null, hostname: "x" }, { by: "api" })).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect(store.machines.require(A)).toMatchObject({ profile: "web", hostname: null, state: "installing" });
    await machines.register({ mac: B, labels: {}, metadata: {} }, { by: "api" });
    await expect(machines.reinstall(B, { by: "api" })).rejects.toThrow(/needs a profile/);
  });

  it("forgets and deletes with the history kept and the way it went said", async () => {
    await machines.register({ mac: A, labels: {}, metadata: {} }, { by: "api" });
    await machines.register({ mac: B, labels: {}, metadata: {} }, { by: "api" });
    await machines.remove(A, "forget", { by: "ui" });
    await machines.remove(B, "delete", { by: "api" });
    expect(store.machines.get(A)).toBeUndefined();
    expect((await kinds(A)).at(-1)).toBe("lifecycle.forget");
    expect((await kinds(B)).at(-1)).toBe("machine.deleted");
    await expect(machines.remove(A, "forget", { by: "api" })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("fails installs past the deadline, and only those", async () => {
    await machines.register({ mac: A, profile: "web", labels: {}, metadata: {} }, { by: "api" });
    await machines.register({ mac: B, profile: "web", labels: {}, metadata: {} }, { by: "api" });
    await machines.report(A, "install-started", { by: "report" });
    expect(await machines.sweep(60)).toEqual([]);
    const swept = await machines.sweep(60, Date.now() + 61_000);
    expect(swept.map((m) => [m.mac, m.state])).toEqual([[A, "failed"]]);
    expect((await store.events.list({ mac: A, limit: 1 }))[0]).toMatchObject({
      kind: "lifecycle.deadline",
      detail: { by: "watchdog", deadlineSeconds: 60 },
    });
  });

  it("records sightings, limiting new machines per address but not DHCP's", async () => {
    const macs = ["52:54:00:00:0b:01", "52:54:00:00:0b:02", "52:54:00:00:0b:03"];
    expect(macs.map((mac) => machines.sighting({ mac }, { by: "ipxe", ip: "10.0.0.9" })?.state)).toEqual([
      "discovered",
      "discovered",
      undefined,
    ]);
    // A known machine is always recorded; DHCP clients have no address yet and are bounded by the cap alone.
    expect(machines.sighting({ mac: macs[0]!, arch: "arm64" }, { by: "ipxe", ip: "10.0.0.9" })?.arch).toBe("arm64");
    expect(machines.sighting({ mac: macs[2]! }, { by: "dhcp" })?.state).toBe("discovered");
    await store.history.committed();
    expect(await kinds(macs[2]!)).toEqual(["machine.discovered"]);
    expect((await store.events.list({ kind: "ipxe.refused", limit: 5 })).length).toBeLessThanOrEqual(1);
  });

  it("puts a failed prefetch of an assigned Flatcar release in that machine's history", async () => {
    // A port nothing listens on: the sync fails at once, offline, with the cause in the reason.
    const port = await freePort();
    machines = machinesFor(store, { flatcar: { origin: `http://127.0.0.1:${port}/{channel}/{board}`, attempts: 1 } });
    store.profiles.put(
      ProfileCreateSchema.parse({ name: "fc", flatcar: { channel: "stable", version: "4081.2.0", arch: "amd64" } }),
    );
    await machines.register({ mac: A, labels: {}, metadata: {} }, { by: "api" });
    await machines.update(A, { profile: "fc" }, { by: "api" });
    const deadline = Date.now() + 10_000;
    while (!(await kinds(A)).includes("flatcar.prefetch.failed") && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect((await store.events.list({ mac: A, kind: "flatcar.prefetch.failed", limit: 1 }))[0]?.detail).toMatchObject({
      profile: "fc",
      channel: "stable",
      version: "4081.2.0",
      reason: expect.stringMatching(/ECONNREFUSED|refused/),
    });
  });
});
