import { type BootPlan, ipxeKernelArgs } from "./plan.ts";

/**
 * iPXE scripts, as pure functions of plain data. Every script starts with `#!ipxe`; values that reach a
 * script come from Kindling's own records and are checked at the API, but are still quoted where iPXE would
 * split them.
 */

/** Kernel arguments every Flatcar PXE boot needs (DESIGN.md §9). */
export const FLATCAR_CONSOLE_ARGS = ["console=tty0", "console=ttyS0,115200n8"];

/**
 * Text shown with `echo`: iPXE expands `${...}` and treats `||`/`&&` as operators, so those never reach a
 * script from data, and a newline would start a new command.
 */
export function ipxeText(s: string): string {
  return s
    .replace(/[\r\n]+/g, " ")
    .replace(/\$\{/g, "$ {")
    .replace(/\|\||&&/g, " ");
}

/** The script every iPXE is first pointed at: it reports what iPXE knows and asks for the machine's script. */
export function bootScript(baseUrl: string): string {
  // serial and hostname may hold spaces; uristring escapes them for the query.
  const query =
    "mac=${mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}&hostname=${hostname:uristring}" +
    "&arch=${buildarch}&platform=${platform}";
  return `#!ipxe\nchain --autofree ${baseUrl}/ipxe?${query}\n`;
}

export interface KernelBoot {
  comment: string;
  kernel: string;
  /** Each initrd with the name iPXE gives it (the kernel finds it by `initrd=<name>`). */
  initrds: { name: string; url: string }[];
  args: string[];
}

/** A kernel + initrd boot. `imgfree` first: a chained script must not carry earlier images into the kernel. */
export function kernelScript(b: KernelBoot): string {
  const lines = [
    "#!ipxe",
    `echo Kindling: ${ipxeText(b.comment)}`,
    "imgfree",
    `kernel ${b.kernel} ${b.args.join(" ")}`.trimEnd(),
  ];
  for (const i of b.initrds) lines.push(`initrd --name ${i.name} ${i.url}`);
  lines.push("boot");
  return `${lines.join("\n")}\n`;
}

/** Ask again later: the machine is unknown, unassigned or its release is still being mirrored. */
export function waitScript(reason: string, retrySeconds: number, baseUrl: string): string {
  return [
    "#!ipxe",
    `echo Kindling: ${ipxeText(reason)}`,
    `echo Kindling: asking again in ${retrySeconds} s`,
    `sleep ${retrySeconds}`,
    // --replace keeps a machine that waits for hours from stacking one script per retry.
    `chain --replace --autofree ${baseUrl}/boot.ipxe`,
    "",
  ].join("\n");
}

/**
 * Boot the local disk. UEFI: `exit` hands control back to the firmware's boot order. BIOS: `exit` does the
 * same on most machines; sanboot of the first disk is the fallback for ROMs that do not return.
 */
export function localBootScript(reason: string): string {
  return [
    "#!ipxe",
    `echo Kindling: ${ipxeText(reason)}, booting from local disk`,
    "iseq ${platform} efi && exit ||",
    "sanboot --no-describe --drive 0x80 || exit",
    "",
  ].join("\n");
}

/** Name iPXE gives an initrd fetched from `url`: its last path segment. */
export function initrdName(url: string): string {
  const path = url.split("?")[0]!;
  return path.slice(path.lastIndexOf("/") + 1) || "initrd";
}

/** A Kindling path (`/assets/...`) or an absolute URL elsewhere, as a boot plan names files. */
export const isAbsoluteUrl = (loc: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(loc);

/** The iPXE script for a boot plan: iPXE fetches everything over HTTP from `server` (or the plan's own URLs). */
export function ipxeScript(plan: BootPlan, server: string, retrySeconds: number): string {
  switch (plan.kind) {
    case "wait":
      return waitScript(plan.reason, retrySeconds, server);
    case "local":
      return localBootScript(plan.reason);
    case "kernel": {
      const url = (loc: string) => (isAbsoluteUrl(loc) ? loc : `${server}${loc}`);
      const initrds = plan.initrds.map((loc) => ({ name: initrdName(loc), url: url(loc) }));
      return kernelScript({
        comment: plan.comment,
        kernel: url(plan.kernel),
        initrds,
        args: ipxeKernelArgs(
          initrds.map((i) => i.name),
          plan.args,
        ),
      });
    }
  }
}
