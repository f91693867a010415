/**
 * The established way to boot a rack: dnsmasq (DHCP + TFTP, the usual iPXE chainloading recipe) and nginx
 * serving static files. What Kindling computes per machine is generated once here, per MAC, with Kindling's
 * own renderers (same script text, same installer config, same sizes) and served as files: `/ipxe?mac=` and
 * `/ignition?mac=` map to `<mac>.ipxe` / `<mac>.json`, reports get an empty 204. The kernel and initrd are
 * the very files in Kindling's mirror.
 */
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { installerIgnition, reportUnit, withReportUnit } from "../../src/boot/installer.ts";
import { flatcarKernelArgs } from "../../src/boot/plan.ts";
import { bootScript, FLATCAR_CONSOLE_ARGS, ipxeScript } from "../../src/boot/render.ts";
import { boardUrlPath } from "../../src/flatcar/layout.ts";
import { PXE_INITRD, PXE_KERNEL } from "../../src/flatcar/release.ts";
import { HTTP_PORT, type RunningServer } from "./kindling.ts";
import type { MachineSpec } from "./plan.ts";
import { CHANNEL, type StagedRelease, VERSION } from "./release.ts";
import { NETMASK, SERVER_IF, SERVER_IP, type Topology } from "./topology.ts";
import { waitForHttp, waitForUdp } from "./wait.ts";

const BASE = `http://${SERVER_IP}:${HTTP_PORT}`;
const BOARD = "amd64-usr";

/** The per-machine files Kindling would have answered with, as static files under `www`. */
function writeSite(www: string, machines: MachineSpec[]): void {
  for (const d of ["ipxe", "ignition", "final"]) mkdirSync(join(www, d), { recursive: true });
  writeFileSync(join(www, "boot.ipxe"), bootScript(BASE));
  const mirror = `${BASE}${boardUrlPath(CHANNEL, "amd64")}`;
  for (const m of machines) {
    const id = m.mac.replace(/:/g, "-");
    const reportUrl = `${BASE}/report?mac=${id}`;
    const finalUrl = `${BASE}/ignition/final?mac=${id}`;
    // Kindling's own renderer, so the peer's script says exactly what Kindling's would.
    const script = ipxeScript(
      {
        kind: "kernel",
        comment: `${m.mac} profile flatcar-install: Flatcar ${CHANNEL} ${VERSION}`,
        kernel: `${mirror}/${VERSION}/${PXE_KERNEL}`,
        initrds: [`${mirror}/${VERSION}/${PXE_INITRD}`],
        args: flatcarKernelArgs({
          ignitionUrl: `${BASE}/ignition?mac=${id}`,
          consoles: FLATCAR_CONSOLE_ARGS,
          extra: [],
        }),
      },
      BASE,
      30,
    );
    writeFileSync(join(www, "ipxe", `${id}.ipxe`), script);
    const installer = installerIgnition({
      mac: m.mac,
      channel: CHANNEL,
      version: VERSION,
      board: BOARD,
      baseUrl: mirror,
      disk: undefined,
      oem: undefined,
      extraArgs: [],
      finalUrl,
      reportUrl,
    });
    writeFileSync(join(www, "ignition", `${id}.json`), JSON.stringify(installer));
    const motd = `Installed from ${BASE} (Flatcar ${CHANNEL} ${VERSION}).\n`;
    const final = withReportUnit(
      {
        ignition: { version: "3.3.0" },
        storage: {
          files: [
            {
              path: "/etc/motd.d/kindling.conf",
              mode: 0o644,
              contents: { source: `data:,${encodeURIComponent(motd)}` },
            },
          ],
        },
      },
      reportUnit("first-boot", reportUrl),
    );
    writeFileSync(join(www, "final", `${id}.json`), JSON.stringify(final));
  }
}

function nginxConf(dir: string, www: string, assets: string, workers: number): string {
  const tmp = join(dir, "nginx-tmp");
  mkdirSync(tmp, { recursive: true });
  return `
user root;
worker_processes ${workers};
worker_rlimit_nofile 16384;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "nginx-error.log")} warn;
events { worker_connections 8192; }
http {
  access_log ${join(dir, "nginx-access.log")};
  client_body_temp_path ${tmp};
  proxy_temp_path ${tmp};
  fastcgi_temp_path ${tmp};
  uwsgi_temp_path ${tmp};
  scgi_temp_path ${tmp};
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  server {
    listen ${SERVER_IP}:${HTTP_PORT};
    root ${www};
    location /assets/ { alias ${assets}/; }
    location = /ipxe { default_type text/plain; try_files /ipxe/$arg_mac.ipxe =404; }
    location = /ignition { default_type application/json; try_files /ignition/$arg_mac.json =404; }
    location = /ignition/final { default_type application/json; try_files /final/$arg_mac.json =404; }
    location = /report { return 204; }
  }
}
`;
}

/**
 * dnsmasq as the iPXE documentation sets it up: firmware gets the iPXE binary for its architecture, iPXE (user
 * class `iPXE`) gets the script URL and 175.176 `no-pxedhcp` (without it iPXE waits ~3 s for proxy offers).
 * `no-ping`: the simulated machines hold every pool address from the start, so the ping check would refuse
 * them all (and it costs 3 s per machine; Kindling does not probe either). `tftp-max` (concurrent transfers)
 * is raised from dnsmasq's 50: at 50 it stops reading requests, firmware retransmits, every late retransmission
 * opens one more transfer to a client that has moved on, and the storm stalls (docs/storm.md).
 */
function dnsmasqConf(dir: string, t: Topology, machines: number, tftpMax: number): string {
  return [
    "port=0",
    `interface=${SERVER_IF}`,
    "bind-interfaces",
    "user=root",
    `dhcp-range=${t.pool.start},${t.pool.end},${NETMASK},1h`,
    `dhcp-lease-max=${machines + 100}`,
    `dhcp-leasefile=${join(dir, "dnsmasq.leases")}`,
    "no-ping",
    "enable-tftp",
    "tftp-root=/usr/lib/ipxe",
    `tftp-max=${tftpMax}`,
    "dhcp-userclass=set:ipxe,iPXE",
    "dhcp-match=set:bios,option:client-arch,0",
    "dhcp-match=set:efi64,option:client-arch,7",
    "dhcp-match=set:efi64,option:client-arch,9",
    "dhcp-boot=tag:!ipxe,tag:bios,undionly.kpxe",
    "dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi",
    `dhcp-boot=tag:ipxe,${BASE}/boot.ipxe`,
    "dhcp-option-force=tag:ipxe,175,b0:01:01",
    "",
  ].join("\n");
}

export async function startPeer(
  t: Topology,
  dir: string,
  release: StagedRelease,
  machines: MachineSpec[],
  nginxWorkers: number,
  tftpMax: number,
): Promise<{ nginx: RunningServer; dnsmasq: RunningServer }> {
  const www = join(dir, "www");
  writeSite(www, machines);
  const nginxFile = join(dir, "nginx.conf");
  writeFileSync(nginxFile, nginxConf(dir, www, release.assetsDir, nginxWorkers));
  const dnsmasqFile = join(dir, "dnsmasq.conf");
  writeFileSync(dnsmasqFile, dnsmasqConf(dir, t, machines.length, tftpMax));

  const nginx = t.lab.adopt(t.server.spawn([...t.serverCpu, "nginx", "-c", nginxFile, "-g", "daemon off;"]));
  const dnsmasq = t.lab.adopt(
    t.server.spawn([
      ...t.serverCpu,
      "dnsmasq",
      "--keep-in-foreground",
      `--conf-file=${dnsmasqFile}`,
      "--pid-file=",
      `--log-facility=${join(dir, "dnsmasq.log")}`,
    ]),
  );
  for (const [c, name] of [
    [nginx, "nginx.out"],
    [dnsmasq, "dnsmasq.out"],
  ] as const) {
    const out = createWriteStream(join(dir, name));
    c.stdout!.pipe(out, { end: false });
    c.stderr!.pipe(out, { end: false });
  }
  await waitForHttp(t.server, `${BASE}/boot.ipxe`, nginx);
  await waitForUdp(t.server, 69, dnsmasq);
  const stopper = (c: typeof nginx) => async () => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    await exited;
  };
  return { nginx: { stop: stopper(nginx) }, dnsmasq: { stop: stopper(dnsmasq) } };
}
