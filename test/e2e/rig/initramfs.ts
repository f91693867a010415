import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Kernel, moduleLoadOrder } from "./kernel.ts";

/** Printed on the serial console by the initramfs once it has fetched its Ignition config. */
export const BOOTED_MARKER = "KINDLING-E2E-BOOTED";
/** `kindling-e2e: ignition sha256 <hex>` — what the VM fetched, to compare with what the server rendered. */
export const SHA_LINE = /kindling-e2e: ignition sha256 ([0-9a-f]{64})/;

/** NIC drivers the scenarios use: e1000 under SeaBIOS, virtio-net under OVMF (no e1000 driver) and AAVMF. */
const NIC_MODULES = ["e1000", "virtio_pci", "virtio_net"];

/*
 * The whole "operating system": bring up the NIC, DHCP, fetch ignition.config.url from the kernel
 * command line, print its sha256 and the marker, power off. Every step says what it did so a failing
 * boot can be read from the serial log alone.
 */
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "kindling-e2e: $*"; }
for m in $(cat /etc/modules.load); do insmod "/lib/modules/$m" || say "insmod $m failed"; done
ip link set lo up
IF=
i=0
while [ -z "$IF" ] && [ $i -lt 50 ]; do
  for d in /sys/class/net/*; do n=\${d##*/}; [ "$n" = lo ] || IF=$n; done
  [ -n "$IF" ] || sleep 0.2
  i=$((i+1))
done
[ -n "$IF" ] || { say "no network interface"; poweroff -f; }
ip link set "$IF" up
say "dhcp on $IF"
if ! udhcpc -i "$IF" -s /etc/udhcpc.script -n -q -t 20 -T 1; then say "dhcp failed"; poweroff -f; fi
url=$(tr ' ' '\\n' < /proc/cmdline | sed -n 's/^ignition\\.config\\.url=//p' | head -n 1)
[ -n "$url" ] || { say "no ignition.config.url on the command line"; poweroff -f; }
say "ignition url $url"
if timeout 30 wget -q -O /tmp/ignition "$url"; then
  say "ignition sha256 $(sha256sum /tmp/ignition | cut -d' ' -f1)"
  # A scripted "installer": tell Kindling the install started and finished, as flatcar-install's unit would.
  report=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^kindling.e2e.report=//p' | head -n 1)
  # kindling.e2e.report-kinds=booted makes it a live system instead (comma-separated report kinds).
  kinds=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^kindling.e2e.report-kinds=//p' | head -n 1 | tr ',' ' ')
  if [ -n "$report" ]; then
    for ev in \${kinds:-install-started install-done}; do
      if timeout 30 wget -q -O /dev/null --post-data "e2e initramfs: $ev" "$report&kind=$ev"; then
        say "reported $ev"
      else
        say "report $ev failed"
      fi
    done
  fi
  say "${BOOTED_MARKER}"
else
  say "ignition fetch failed"
fi
poweroff -f
`;

const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ifconfig "$interface" "$ip" netmask "$subnet"
    [ -n "$router" ] && ip route replace default via \${router%% *} dev "$interface"
    echo "kindling-e2e: lease $ip from \${serverid:-?}"
    ;;
esac
exit 0
`;

function sh(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): Buffer {
  return execFileSync(cmd, args, { cwd: opts.cwd, input: opts.input, maxBuffer: 256 * 1024 * 1024 });
}

/** Shared libraries a dynamically linked binary needs, as `ldd` resolves them on this host. */
function sharedLibs(binary: string): string[] {
  const out = sh("ldd", [binary]).toString();
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/**
 * Builds a gzip'd newc cpio at `out` from a busybox and the kernel's NIC modules: the host's busybox (with the
 * libraries it links) by default, or a static one of the kernel's architecture.
 */
export function buildInitramfs(
  kernel: Kernel,
  out: string,
  opts: { staticBusybox?: string; nicModules?: string[] } = {},
): void {
  const { staticBusybox, nicModules = NIC_MODULES } = opts;
  const root = mkdtempSync(join(tmpdir(), "kdl-initramfs-"));
  try {
    for (const d of ["bin", "etc", "lib/modules", "proc", "sys", "dev", "tmp"])
      mkdirSync(join(root, d), { recursive: true });
    copyFileSync(staticBusybox ?? "/usr/bin/busybox", join(root, "bin/busybox"));
    chmodSync(join(root, "bin/busybox"), 0o755);
    for (const lib of staticBusybox ? [] : sharedLibs("/usr/bin/busybox")) {
      mkdirSync(join(root, dirname(lib)), { recursive: true });
      copyFileSync(lib, join(root, lib)); // follows the soname symlink to the real file
    }
    const modules = moduleLoadOrder(kernel, nicModules);
    for (const m of modules) {
      mkdirSync(join(root, "lib/modules", dirname(m)), { recursive: true });
      copyFileSync(join(kernel.modulesDir, m), join(root, "lib/modules", m));
    }
    writeFileSync(join(root, "etc/modules.load"), `${modules.join("\n")}\n`);
    writeFileSync(join(root, "init"), INIT, { mode: 0o755 });
    writeFileSync(join(root, "etc/udhcpc.script"), UDHCPC_SCRIPT, { mode: 0o755 });
    const list = sh("find", [".", "-print0"], { cwd: root });
    const cpio = sh("cpio", ["--null", "-o", "-H", "newc", "--quiet", "-R", "0:0"], { cwd: root, input: list });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, sh("gzip", ["-9n"], { input: cpio }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
