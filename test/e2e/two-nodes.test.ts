import { expect, test } from "vitest";
import { startPostgres } from "../helpers/postgres.ts";
import { startVm } from "./rig/firmware.ts";
import { Kindling, type KindlingEvent } from "./rig/kindling.ts";
import type { Netns } from "./rig/netns.ts";
import { BOOT_TIMEOUT_MS, expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";
import { bootTarget } from "./rig/target.ts";

/** Bound on one node seeing what the other wrote (shipping, then the replica's LISTEN/refetch): seconds at most. */
const CROSS_NODE_MS = 30_000;

/** Asks `probe` every half second until it returns something, at most `ms`; the error names what never came. */
async function eventually<T>(what: string, probe: () => T | undefined, ms = CROSS_NODE_MS): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** HTTP status and body of a GET (no token, as a machine asks) from inside `ns`. */
function get(ns: Netns, url: string): { status: number; body: string } {
  const out = ns.exec("curl", ["-sS", "--max-time", "10", "-w", "\n%{http_code}", url]);
  const cut = out.lastIndexOf("\n");
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

/**
 * The same signed URL with the first character of its signature changed (all six of its bits count; the last
 * character of a base64url HMAC carries padding bits a decoder may ignore).
 */
function tampered(url: string): string {
  const u = new URL(url);
  const sig = u.searchParams.get("sig") ?? "";
  u.searchParams.set("sig", (sig.startsWith("A") ? "B" : "A") + sig.slice(1));
  return u.toString();
}

const nodesOf = (events: KindlingEvent[]) => [...new Set(events.map((e) => e.node))].sort();

// Issue 17's scenario: two nodes on one PostgreSQL and one segment. Node A answers DHCP (full mode), TFTP and
// HTTP; node B only HTTP and the API. The VM is discovered through A, assigned through B's API, installs
// through A, and the Ignition URL A signed for it verifies on B.
test("two nodes, one PostgreSQL: discovered through A, assigned through B, installed through A, A's signed URL verifies on B", async () => {
  const postgres = startPostgres();
  try {
    const database = postgres.url(await postgres.createDatabase("two_nodes_e2e"));
    const scenario = { subnet: 17, dhcp: "full" as const, retrySeconds: 3, node: "a", database };
    await runScenario("two-nodes", scenario, async ({ ns, dir, kindling: a }) => {
      const target = bootTarget();
      const b = await Kindling.start({
        ns: ns.attachHost(2),
        workDir: dir,
        node: "b",
        dhcp: "off",
        database,
        assets: { vmlinuz: target.vmlinuz, "initrd.gz": target.initrd },
      });
      try {
        const mac = "52:54:00:e2:11:01";

        // Nobody registered it: A's DHCP and /ipxe discover it, and it waits in iPXE's retry loop.
        const discovery = startVm("bios-ipxe", ns, dir, mac, undefined, "serial-discovery.log");
        await discovery.waitFor(/asking again in 3 s/, BOOT_TIMEOUT_MS);
        expect(a.call("GET", `/machines/${mac}`)).toMatchObject({ state: "discovered", profile: null });
        await eventually("the machine A discovered in B's GET /api/v1/machines", () =>
          (b.call("GET", "/machines?limit=1000") as { mac: string }[]).find((m) => m.mac === mac),
        );
        discovery.stop();
        await discovery.waitExit(10_000);

        // The profile and the assignment are written through B only.
        putProfile(b, "e2e", ["kindling.e2e.report={{ urls.report }}"]);
        b.call("PATCH", `/machines/${mac}`, { profile: "e2e" });
        await eventually("B's assignment in A's GET /machines/{mac}", () => {
          const m = a.call("GET", `/machines/${mac}`) as { profile: string | null };
          return m.profile === "e2e" ? m : undefined;
        });

        // Powered on again: DHCP, /ipxe, kernel, initrd and Ignition from A; the scripted install reports to A.
        const install = startVm("bios-ipxe", ns, dir, mac, undefined, "serial-install.log");
        const booted = await expectBooted(install, a);
        reportTime("two-nodes (install through A)", booted.markerMs);
        expect(install.serial).toMatch(/kindling-e2e: reported install-done/);
        await install.waitExit(60_000);

        await eventually("B's API showing the machine installed", () => {
          const m = b.call("GET", `/machines/${mac}`) as { state: string };
          return m.state === "installed" ? m : undefined;
        });

        // A signed the URL; B verifies it with the shared key and serves the same document.
        const fromA = get(ns, booted.ignitionUrl);
        expect(fromA.status).toBe(200);
        const onB = booted.ignitionUrl.replace(a.baseUrl, b.baseUrl);
        expect(onB.startsWith(`${b.baseUrl}/ignition?`)).toBe(true);
        const fromB = get(ns, onB);
        expect(fromB.status, fromB.body).toBe(200);
        expect(fromB.body).toBe(fromA.body);
        for (const url of [booted.ignitionUrl, onB]) expect(get(ns, tampered(url)).status, url).toBe(403);

        // One history in PostgreSQL: either node lists what both recorded (A the boots, B the assignment and
        // the Ignition it served).
        for (const k of [a, b])
          await eventually(`both nodes' events for ${mac} in ${k === a ? "A" : "B"}'s GET /api/v1/events`, () => {
            const events = k.events(mac);
            return nodesOf(events).join(",") === "a,b" ? events : undefined;
          });
        const events = b.events(mac);
        expect(events.some((e) => e.node === "a" && e.kind === "machine.discovered")).toBe(true);
        expect(events.some((e) => e.node === "b" && e.kind === "machine.updated")).toBe(true);
        expect(events.some((e) => e.node === "a" && e.kind === "ipxe.request" && e.detail.outcome === "boot")).toBe(
          true,
        );
      } finally {
        b.stop();
      }
    });
  } finally {
    postgres.stop();
  }
}, 600_000);
