import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startCapture } from "./firmware.ts";
import { SHA_LINE } from "./initramfs.ts";
import { Kindling } from "./kindling.ts";
import { Netns } from "./netns.ts";
import { scenarioDir } from "./paths.ts";
import { startDnsmasq } from "./peers.ts";
import type { Vm } from "./qemu.ts";
import { type BootTarget, bootTarget, TARGET_ARGS } from "./target.ts";

/** Bound for one boot, QEMU start → marker; TCG boots take 30–60 s here. */
export const BOOT_TIMEOUT_MS = 240_000;

export interface ScenarioOptions {
  /** Third octet of the scenario's 10.213.x.0/24. */
  subnet: number;
  dhcp: "full" | "proxy";
  /** Proxy mode: the site's own DHCP server (dnsmasq, no PXE options, on another host of the segment) hands out addresses. */
  siteDhcp?: boolean;
  defaultProfile?: string;
  retrySeconds?: number;
  /** Kernel + initramfs served at /assets/e2e/ (default: the amd64 target). */
  target?: () => BootTarget;
  /** Extra files for <dataDir>/loaders/. */
  loaders?: Record<string, string>;
  /** The node's name when it shares `database` with others (see KindlingOptions). */
  node?: string;
  database?: string;
}

export interface Scenario {
  ns: Netns;
  dir: string;
  kindling: Kindling;
}

/** Ignition the raw-boot profile serves; the VM prints the sha256 of what it fetched. */
export const IGNITION = {
  ignition: { version: "3.4.0" },
  storage: { files: [{ path: "/etc/kindling-e2e", mode: 420, contents: { source: "data:,booted%20by%20kindling" } }] },
};

/** An ordinary raw-`boot` profile: kernel and initrd from Kindling's /assets, Ignition from its signed URL. */
export function putProfile(
  k: Kindling,
  name: string,
  extraArgs: string[] = [],
  opts: { loader?: "ipxe" | "grub"; args?: string[] } = {},
): void {
  k.call("PUT", `/profiles/${name}`, {
    description: "e2e: Debian kernel + busybox initramfs",
    boot: {
      kernel: "/assets/e2e/vmlinuz",
      initrd: ["/assets/e2e/initrd.gz"],
      args: [...(opts.args ?? TARGET_ARGS), ...extraArgs],
    },
    ignition: { json: JSON.stringify(IGNITION) },
    ...(opts.loader ? { loader: opts.loader } : {}),
  });
}

function tail(file: string, bytes = 6000): string {
  if (!existsSync(file)) return `(${file} missing)`;
  const text = readFileSync(file, "latin1");
  return text.slice(-bytes).replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, "");
}

/**
 * Runs `body` with a fresh namespace, bridge capture and Kindling. On failure the serial logs, Kindling's
 * log and the capture stay under test-artifacts/e2e/ and their tails are printed; on success the
 * directory is removed (unless KINDLING_E2E_KEEP=1). The namespace (and every process in it) is always removed.
 */
export async function runScenario(
  name: string,
  opts: ScenarioOptions,
  body: (s: Scenario) => Promise<void>,
): Promise<void> {
  const target = (opts.target ?? bootTarget)();
  const dir = scenarioDir(name);
  const ns = Netns.create({ subnet: opts.subnet });
  let kindling: Kindling | undefined;
  try {
    startCapture(ns, join(dir, "bridge.pcap"));
    if (opts.siteDhcp) startDnsmasq({ ns: ns.attachHost(2), workDir: dir });
    kindling = await Kindling.start({
      ns,
      workDir: dir,
      dhcp: opts.dhcp,
      assets: { vmlinuz: target.vmlinuz, "initrd.gz": target.initrd },
      loaders: opts.loaders,
      defaultProfile: opts.defaultProfile,
      retrySeconds: opts.retrySeconds,
      node: opts.node,
      database: opts.database,
    });
    await body({ ns, dir, kindling });
  } catch (err) {
    const logs = readdirSync(dir).filter((f) => f.endsWith(".log"));
    const report = logs.map((f) => `----- ${f} (tail) -----\n${tail(join(dir, f))}`).join("\n");
    console.error(`scenario ${name} failed; artifacts kept in ${dir} (bridge.pcap, *.log)\n${report}`);
    throw err;
  } finally {
    kindling?.stop();
    ns.destroy();
  }
  // KINDLING_E2E_KEEP=1 keeps a good run's artifacts too, to compare a capture with a failing one.
  if (process.env.KINDLING_E2E_KEEP !== "1") rmSync(dir, { recursive: true, force: true });
}

export interface Booted {
  /** QEMU start → marker, ms. */
  markerMs: number;
  ignitionUrl: string;
  sha256: string;
}

/**
 * Waits for the initramfs's marker and checks what it fetched: the Ignition URL on its command line is
 * Kindling's signed per-machine URL, and the sha256 the VM printed equals what Kindling serves there.
 */
export async function expectBooted(vm: Vm, k: Kindling, from = 0, timeoutMs = BOOT_TIMEOUT_MS): Promise<Booted> {
  const marker = await vm.waitFor(/kindling-e2e: KINDLING-E2E-BOOTED/, timeoutMs, from);
  const serial = vm.serial.slice(from);
  const url = /kindling-e2e: ignition url (\S+)/.exec(serial)?.[1];
  const sha = SHA_LINE.exec(serial)?.[1];
  if (!url || !sha) throw new Error("marker without ignition url / sha256 lines");
  if (!url.startsWith(`${k.baseUrl}/ignition?`)) throw new Error(`ignition url ${url} is not Kindling's /ignition`);
  const served = k.fetch(url);
  const expected = createHash("sha256").update(served).digest("hex");
  if (expected !== sha) throw new Error(`VM fetched sha256 ${sha}, Kindling serves ${expected} at ${url}`);
  const doc = JSON.parse(served.toString("utf8")) as typeof IGNITION;
  if (doc.storage?.files?.[0]?.path !== IGNITION.storage.files[0]!.path)
    throw new Error(`served Ignition is not the profile's: ${served}`);
  return { markerMs: marker.atMs, ignitionUrl: url, sha256: sha };
}

/** Prints the measured boot time so the suite's output carries it next to the bench's peer numbers. */
export function reportTime(name: string, ms: number, what = "marker"): void {
  console.log(`e2e ${name}: QEMU start → ${what} ${(ms / 1000).toFixed(1)} s`);
}

/** The list without consecutive repeats: a retransmitted request is answered (and logged) again. */
export function collapse<T>(list: T[]): T[] {
  return list.filter((v, i) => i === 0 || v !== list[i - 1]);
}
