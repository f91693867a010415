/**
 * GRUB configurations for Debian's signed netboot GRUB (behind shim on Secure Boot machines, and on arm64),
 * rendered from the same boot plan as the iPXE scripts. That GRUB reuses the firmware's DHCP lease, reads only
 * `/grub/grub.cfg` over TFTP and has no `http` module, so everything it loads comes over TFTP from the server
 * that gave it the boot file: kernels and initrds must be Kindling paths under `/assets/`.
 */
import { ASSETS_URL } from "../files/assets.ts";
import type { BootPlan } from "./plan.ts";
import { isAbsoluteUrl } from "./render.ts";

/** Where each machine's own configuration lives on the TFTP server, by the MAC GRUB reports. */
export const GRUB_MACHINE_DIR = "grub/machines";

/** Files GRUB can fetch: Kindling's assets tree, which TFTP serves under the same name as HTTP. */
const TFTP_SERVED = new RegExp(`^${ASSETS_URL}/[^?#]+$`);

/**
 * A GRUB word that expands nothing: single quotes (no `$`, no escapes inside), a quote written as `'\''`.
 * A newline would end the command, so none reaches a config from data.
 */
export function grubWord(s: string): string {
  return `'${s.replace(/[\r\n]+/g, " ").replaceAll("'", "'\\''")}'`;
}

/**
 * `/grub/grub.cfg`, the same for every machine: it sources the machine's own file, named by
 * `$net_default_mac`, and sources it again whenever that file returns (a wait, a failed boot), so a
 * machine that waits for hours loops here instead of nesting one `configfile` per retry.
 */
export function grubMainConfig(retrySeconds: number): string {
  return [
    "# Kindling: every machine reads this file first, then its own configuration (rendered per request).",
    "set timeout=0",
    "while true; do",
    `  if source /${GRUB_MACHINE_DIR}/\${net_default_mac}.cfg; then true; else`,
    `    echo "Kindling: no configuration for \${net_default_mac}, asking again in ${retrySeconds} s"`,
    `    sleep ${retrySeconds}`,
    "  fi",
    "done",
    "",
  ].join("\n");
}

export type GrubRender = { ok: true; config: string } | { ok: false; error: string };

const say = (text: string) => `echo ${grubWord(`Kindling: ${text}`)}`;

/** Show the reason, pause, and return to the main config, which asks again. */
export function grubWaitConfig(reason: string, retrySeconds: number): string {
  return [say(reason), say(`asking again in ${retrySeconds} s`), `sleep ${retrySeconds}`, ""].join("\n");
}

/** A machine's configuration: boot its kernel, wait and return (the main config asks again), or leave GRUB. */
export function grubMachineConfig(plan: BootPlan, retrySeconds: number): GrubRender {
  const wait = (reason: string) => grubWaitConfig(reason, retrySeconds);
  switch (plan.kind) {
    case "wait":
      return { ok: true, config: wait(plan.reason) };
    case "local":
      // Back to the firmware (through shim, if it started GRUB), which tries the next boot option.
      return { ok: true, config: [say(`${plan.reason}, booting from local disk`), "exit", ""].join("\n") };
    case "kernel": {
      const unreachable = [plan.kernel, ...plan.initrds].find((f) => isAbsoluteUrl(f) || !TFTP_SERVED.test(f));
      if (unreachable)
        return {
          ok: false,
          error: `GRUB loads files over TFTP only (Debian's signed GRUB has no http module): ${unreachable} is not under /assets/`,
        };
      const lines = [say(plan.comment), `linux ${[plan.kernel, ...plan.args].map(grubWord).join(" ")}`];
      if (plan.initrds.length > 0) lines.push(`initrd ${plan.initrds.map(grubWord).join(" ")}`);
      // `boot` returns only if loading failed; the main config then asks again after the pause.
      lines.push("boot", wait("boot failed"));
      return { ok: true, config: lines.join("\n") };
    }
  }
}
