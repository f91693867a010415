/**
 * Side-by-side boot timing: the same VM, firmware and boot target served once by dnsmasq (DHCP + TFTP
 * with the usual iPXE chainloading rules) + nginx, and once by Kindling (full DHCP mode, raw-boot
 * profile). Prints wall time from QEMU start to the initramfs's marker for each, and the ratio.
 *
 *   npx tsx bench/boot-run.ts [--only=peer|kindling] [bios-ipxe|bios-chain|uefi ...]
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chainloadLikeVendorRom, type Firmware, startCapture, startVm } from "../test/e2e/rig/firmware.ts";
import { BOOTED_MARKER } from "../test/e2e/rig/initramfs.ts";
import { Kindling } from "../test/e2e/rig/kindling.ts";
import { Netns } from "../test/e2e/rig/netns.ts";
import { scenarioDir } from "../test/e2e/rig/paths.ts";
import { startDnsmasq, startNginx, waitForHttp } from "../test/e2e/rig/peers.ts";
import { bootTarget, TARGET_ARGS } from "../test/e2e/rig/target.ts";

const BOOT_TIMEOUT_MS = 240_000;
const ALL: Firmware[] = ["bios-ipxe", "bios-chain", "uefi"];
const IGNITION = JSON.stringify({
  ignition: { version: "3.4.0" },
  storage: { files: [{ path: "/etc/e2e", contents: { source: "data:,bench" } }] },
});

/** QEMU start → the kernel's first line (the network-boot part the servers serve), and → the marker. */
interface Times {
  kernel: number;
  marker: number;
}

async function boot(firmware: Firmware, ns: Netns, dir: string, mac: string): Promise<Times> {
  const vm = startVm(firmware, ns, dir, mac);
  try {
    const kernel = vm.waitFor(/Linux version/, BOOT_TIMEOUT_MS);
    kernel.catch(() => {}); // the marker's wait reports the failure
    if (firmware === "bios-chain") await chainloadLikeVendorRom(vm, BOOT_TIMEOUT_MS);
    const m = await vm.waitFor(new RegExp(BOOTED_MARKER), BOOT_TIMEOUT_MS);
    return { kernel: (await kernel).atMs, marker: m.atMs };
  } catch (err) {
    throw new Error(`${(err as Error).message}; serial log: ${vm.serialLog}`);
  } finally {
    vm.stop();
  }
}

async function withPeers(firmware: Firmware, subnet: number): Promise<Times> {
  const target = bootTarget();
  const dir = scenarioDir(`bench-peer-${firmware}`);
  const ns = Netns.create({ subnet });
  try {
    const www = join(dir, "www");
    mkdirSync(www);
    const base = `http://${ns.serverIp}:8080`;
    // A static script with what Kindling's /ipxe answers for a raw-boot profile.
    writeFileSync(
      join(www, "boot.ipxe"),
      [
        "#!ipxe",
        `kernel ${base}/vmlinuz initrd=initrd.gz ${TARGET_ARGS.join(" ")} ignition.config.url=${base}/ignition.json`,
        `initrd --name initrd.gz ${base}/initrd.gz`,
        "boot",
        "",
      ].join("\n"),
    );
    writeFileSync(join(www, "ignition.json"), IGNITION);
    copyFileSync(target.vmlinuz, join(www, "vmlinuz"));
    copyFileSync(target.initrd, join(www, "initrd.gz"));
    startCapture(ns, join(dir, "bridge.pcap"));
    startNginx(ns, dir, www, 8080);
    await waitForHttp(ns, 8080);
    startDnsmasq({ ns, workDir: dir, pxe: { scriptUrl: `${base}/boot.ipxe` } });
    const ms = await boot(firmware, ns, dir, "52:54:00:be:00:01");
    rmSync(dir, { recursive: true, force: true }); // kept only when the boot failed
    return ms;
  } finally {
    ns.destroy();
  }
}

async function withKindling(firmware: Firmware, subnet: number): Promise<Times> {
  const target = bootTarget();
  const dir = scenarioDir(`bench-kindling-${firmware}`);
  const ns = Netns.create({ subnet });
  try {
    startCapture(ns, join(dir, "bridge.pcap"));
    const k = await Kindling.start({
      ns,
      workDir: dir,
      dhcp: "full",
      assets: { vmlinuz: target.vmlinuz, "initrd.gz": target.initrd },
    });
    k.call("PUT", "/profiles/bench", {
      boot: { kernel: "/assets/e2e/vmlinuz", initrd: ["/assets/e2e/initrd.gz"], args: TARGET_ARGS },
      ignition: { json: IGNITION },
    });
    const mac = "52:54:00:be:00:02";
    k.call("POST", "/machines", { mac, profile: "bench" });
    const ms = await boot(firmware, ns, dir, mac);
    rmSync(dir, { recursive: true, force: true });
    return ms;
  } finally {
    ns.destroy();
  }
}

const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
const named = process.argv.slice(2).filter((a) => !a.startsWith("--")) as Firmware[];
const chosen = named.length ? named : ALL;
for (const f of chosen) if (!ALL.includes(f)) throw new Error(`unknown scenario ${f}; one of ${ALL.join(", ")}`);

const NONE: Times = { kernel: NaN, marker: NaN };
const sec = (ms: number) => `${(ms / 1000).toFixed(1).padStart(5)} s`;
const rows: string[] = [];
let subnet = 200;
for (const firmware of chosen) {
  const peer = only === "kindling" ? NONE : await withPeers(firmware, subnet++);
  const kindling = only === "peer" ? NONE : await withKindling(firmware, subnet++);
  const row =
    `${firmware.padEnd(11)} marker: dnsmasq+nginx ${sec(peer.marker)}  kindling ${sec(kindling.marker)}  ratio ${(kindling.marker / peer.marker).toFixed(2)}` +
    `   | kernel up: dnsmasq+nginx ${sec(peer.kernel)}  kindling ${sec(kindling.kernel)}  ratio ${(kindling.kernel / peer.kernel).toFixed(2)}`;
  console.log(row);
  rows.push(row);
}
console.log(
  `\nQEMU start → marker and → first kernel line (TCG), same rig, same run; ratio = kindling/peer:\n${rows.join("\n")}`,
);
