import type { ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Netns } from "./netns.ts";

/**
 * The established way to do what Kindling does: dnsmasq for DHCP + TFTP with the usual iPXE
 * chainloading rules, nginx for the static files. Used as the baseline in bench/boot.sh, and (DHCP
 * only, no boot options at all) as the site's ordinary DHCP server beside Kindling in proxy mode.
 */

function pipeTo(child: ChildProcess, file: string): void {
  const out = createWriteStream(file);
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
}

export interface DnsmasqOptions {
  ns: Netns;
  workDir: string;
  /** Also answer PXE/iPXE with boot files (TFTP from Debian's ipxe) and this iPXE script URL. */
  pxe?: { scriptUrl: string };
  /** Or serve TFTP from this root with these boot rules (dnsmasq.conf lines: dhcp-match, dhcp-boot, …). */
  boot?: { tftpRoot?: string; rules: string[] };
}

export function startDnsmasq(opts: DnsmasqOptions): ChildProcess {
  const { ns } = opts;
  const conf = [
    "port=0", // no DNS
    `interface=${ns.iface}`,
    "bind-interfaces",
    "user=root",
    `dhcp-range=${ns.prefix}.100,${ns.prefix}.199,255.255.255.0,1h`,
    `dhcp-leasefile=${join(opts.workDir, "dnsmasq.leases")}`,
    "log-dhcp",
  ];
  if (opts.pxe) {
    conf.push(
      "enable-tftp",
      "tftp-root=/usr/lib/ipxe",
      // The classic chainloading recipe: iPXE says so in its user class; firmware gets the binary for its arch.
      "dhcp-userclass=set:ipxe,iPXE",
      "dhcp-match=set:bios,option:client-arch,0",
      "dhcp-match=set:efi64,option:client-arch,7",
      "dhcp-match=set:efi64,option:client-arch,9",
      "dhcp-boot=tag:!ipxe,tag:bios,undionly.kpxe",
      "dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi",
      `dhcp-boot=tag:ipxe,${opts.pxe.scriptUrl}`,
    );
  }
  if (opts.boot) {
    if (opts.boot.tftpRoot) conf.push("enable-tftp", `tftp-root=${opts.boot.tftpRoot}`);
    conf.push(...opts.boot.rules);
  }
  const file = join(opts.workDir, "dnsmasq.conf");
  writeFileSync(file, `${conf.join("\n")}\n`);
  const child = ns.spawn("dnsmasq", ["--keep-in-foreground", "--log-facility=-", `--conf-file=${file}`, "--pid-file="]);
  pipeTo(child, join(opts.workDir, "dnsmasq.log"));
  return child;
}

/** nginx serving `root` on <serverIp>:<port>, logs and temp files under workDir. */
export function startNginx(ns: Netns, workDir: string, root: string, port: number): ChildProcess {
  const tmp = join(workDir, "nginx-tmp");
  mkdirSync(tmp, { recursive: true });
  const conf = `
user root;
worker_processes 1;
pid ${join(workDir, "nginx.pid")};
error_log ${join(workDir, "nginx-error.log")} info;
events { worker_connections 64; }
http {
  access_log ${join(workDir, "nginx-access.log")};
  client_body_temp_path ${tmp};
  proxy_temp_path ${tmp};
  fastcgi_temp_path ${tmp};
  uwsgi_temp_path ${tmp};
  scgi_temp_path ${tmp};
  default_type application/octet-stream;
  sendfile on;
  server {
    listen ${ns.serverIp}:${port};
    root ${root};
  }
}
`;
  const file = join(workDir, "nginx.conf");
  writeFileSync(file, conf);
  const child = ns.spawn("nginx", ["-c", file, "-g", "daemon off;"]);
  pipeTo(child, join(workDir, "nginx.log"));
  return child;
}

/** Waits until an HTTP server answers (any status) on serverIp:port inside the namespace. */
export async function waitForHttp(ns: Netns, port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      ns.exec("curl", ["-s", "-o", "/dev/null", "--max-time", "1", `http://${ns.serverIp}:${port}/`]);
      return;
    } catch {
      if (Date.now() > deadline)
        throw new Error(`nothing listens on ${ns.serverIp}:${port} in ${ns.name} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
