/**
 * Side-by-side boot timing: the same VM, firmware and boot target served once by dnsmasq (DHCP + TFTP
 * with the usual rules for each path) + nginx, and once by Kindling (full DHCP mode, raw-boot profile).
 * Prints wall time from QEMU start to the initramfs's marker for each, and the ratio. Paths:
 * - `bios-ipxe`, `bios-chain`, `uefi`: iPXE chainloading (dnsmasq's classic user-class rules);
 * - `uefi-http`: UEFI HTTP Boot of ipxe.efi (dnsmasq: option 60 `HTTPClient` and a URL for arch 16);
 * - `uefi-secboot`: Secure Boot, shim → signed GRUB → kernel over TFTP (dnsmasq: a static grub.cfg);
 * - `arm64`: AAVMF → grubnetaa64.efi → arm64 kernel over TFTP (dnsmasq: a static grub.cfg).
 *
 *   npx tsx bench/boot-run.ts [--only=peer|kindling] [bios-ipxe|bios-chain|uefi|uefi-http|uefi-secboot|arm64 ...]
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chainloadLikeVendorRom, type Firmware, startCapture, startVm } from "../test/e2e/rig/firmware.ts";
import { BOOTED_MARKER } from "../test/e2e/rig/initramfs.ts";
import { Kindling } from "../test/e2e/rig/kindling.ts";
import { Netns } from "../test/e2e/rig/netns.ts";
import { scenarioDir } from "../test/e2e/rig/paths.ts";
import { startDnsmasq, startNginx, waitForHttp } from "../test/e2e/rig/peers.ts";
import {
  ARM64_TARGET_ARGS,
  arm64BootTarget,
  arm64Grub,
  type BootTarget,
  bootTarget,
  TARGET_ARGS,
} from "../test/e2e/rig/target.ts";

const ALL: Firmware[] = ["bios-ipxe", "bios-chain", "uefi", "uefi-http", "uefi-secboot", "arm64"];
/** Paths that end in GRUB, loading kernel and initrd over TFTP. */
const GRUB_PATHS: ReadonlySet<Firmware> = new Set(["uefi-secboot", "arm64"]);
const timeoutFor = (f: Firmware) => (f === "arm64" ? 480_000 : 240_000);
const targetFor = (f: Firmware): BootTarget => (f === "arm64" ? arm64BootTarget() : bootTarget());
const argsFor = (f: Firmware) => (f === "arm64" ? ARM64_TARGET_ARGS : TARGET_ARGS);
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
  const timeout = timeoutFor(firmware);
  try {
    const kernel = vm.waitFor(/Linux version/, timeout);
    kernel.catch(() => {}); // the marker's wait reports the failure
    if (firmware === "bios-chain") await chainloadLikeVendorRom(vm, timeout);
    const m = await vm.waitFor(new RegExp(BOOTED_MARKER), timeout);
    return { kernel: (await kernel).atMs, marker: m.atMs };
  } catch (err) {
    throw new Error(`${(err as Error).message}; serial log: ${vm.serialLog}`);
  } finally {
    vm.stop();
  }
}

/**
 * The peer's answer for each path: dnsmasq's rules (and its TFTP root, when the path uses TFTP), with nginx
 * serving the iPXE script, ipxe.efi, kernel, initrd and Ignition. GRUB paths get a static grub.cfg with the
 * command line Kindling renders, and kernel + initrd in the TFTP root (Debian's signed GRUB has no HTTP).
 */
function peerBoot(
  firmware: Firmware,
  dir: string,
  www: string,
  base: string,
): Parameters<typeof startDnsmasq>[0]["boot"] {
  const target = targetFor(firmware);
  const args = `${argsFor(firmware).join(" ")} ignition.config.url=${base}/ignition.json`;
  if (firmware === "uefi-http") {
    copyFileSync("/usr/lib/ipxe/ipxe.efi", join(www, "ipxe.efi"));
    return {
      rules: [
        "dhcp-userclass=set:ipxe,iPXE",
        "dhcp-match=set:efihttp,option:client-arch,16",
        "dhcp-option-force=tag:efihttp,60,HTTPClient",
        `dhcp-boot=tag:efihttp,tag:!ipxe,${base}/ipxe.efi`,
        `dhcp-boot=tag:ipxe,${base}/boot.ipxe`,
      ],
    };
  }
  if (!GRUB_PATHS.has(firmware)) return undefined;
  const tftp = join(dir, "tftp");
  mkdirSync(join(tftp, "grub"), { recursive: true });
  writeFileSync(join(tftp, "grub", "grub.cfg"), `linux /vmlinuz ${args}\ninitrd /initrd.gz\nboot\n`);
  copyFileSync(target.vmlinuz, join(tftp, "vmlinuz"));
  copyFileSync(target.initrd, join(tftp, "initrd.gz"));
  if (firmware === "arm64") {
    copyFileSync(arm64Grub(), join(tftp, "grubnetaa64.efi"));
    return {
      tftpRoot: tftp,
      rules: ["dhcp-match=set:arm64,option:client-arch,11", "dhcp-boot=tag:arm64,grubnetaa64.efi"],
    };
  }
  copyFileSync("/usr/lib/shim/shimx64.efi.signed", join(tftp, "shimx64.efi"));
  copyFileSync("/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", join(tftp, "grubx64.efi"));
  return { tftpRoot: tftp, rules: ["dhcp-match=set:efi64,option:client-arch,7", "dhcp-boot=tag:efi64,shimx64.efi"] };
}

async function withPeers(firmware: Firmware, subnet: number): Promise<Times> {
  const target = targetFor(firmware);
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
        `kernel ${base}/vmlinuz initrd=initrd.gz ${argsFor(firmware).join(" ")} ignition.config.url=${base}/ignition.json`,
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
    const rules = peerBoot(firmware, dir, www, base);
    startDnsmasq({ ns, workDir: dir, ...(rules ? { boot: rules } : { pxe: { scriptUrl: `${base}/boot.ipxe` } }) });
    const ms = await boot(firmware, ns, dir, "52:54:00:be:00:01");
    rmSync(dir, { recursive: true, force: true }); // kept only when the boot failed
    return ms;
  } finally {
    ns.destroy();
  }
}

async function withKindling(firmware: Firmware, subnet: number): Promise<Times> {
  const target = targetFor(firmware);
  const dir = scenarioDir(`bench-kindling-${firmware}`);
  const ns = Netns.create({ subnet });
  try {
    startCapture(ns, join(dir, "bridge.pcap"));
    const k = await Kindling.start({
      ns,
      workDir: dir,
      dhcp: "full",
      assets: { vmlinuz: target.vmlinuz, "initrd.gz": target.initrd },
      ...(firmware === "arm64" ? { loaders: { "grubnetaa64.efi": arm64Grub() } } : {}),
    });
    k.call("PUT", "/profiles/bench", {
      boot: { kernel: "/assets/e2e/vmlinuz", initrd: ["/assets/e2e/initrd.gz"], args: argsFor(firmware) },
      ignition: { json: IGNITION },
      // Secure Boot needs the signed chain; arm64 gets GRUB by its architecture's default.
      ...(firmware === "uefi-secboot" ? { loader: "grub" } : {}),
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
