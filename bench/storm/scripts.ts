/**
 * The parts of iPXE and of the installed system the simulated machines act out, as pure functions: expand
 * iPXE's variables, follow `chain`, read `kernel`/`initrd`/`boot`, take `ignition.config.url` from the kernel
 * arguments, and find the installer's report and final-config URLs in the Ignition config it is given.
 */
import type { Firmware } from "./plan.ts";

export interface IpxeVars {
  mac: string;
  uuid: string;
  firmware: Firmware;
}

/** iPXE's `${name}` / `${name:type}` expansion for the settings `/boot.ipxe` uses; unknown names expand empty. */
export function expandIpxe(text: string, v: IpxeVars): string {
  const values: Record<string, string> = {
    mac: v.mac,
    "mac:hexhyp": v.mac.replace(/:/g, "-"),
    uuid: v.uuid,
    // undionly.kpxe reports i386 even on 64-bit CPUs (DESIGN.md §9).
    buildarch: v.firmware === "bios" ? "i386" : "x86_64",
    platform: v.firmware === "bios" ? "pcbios" : "efi",
  };
  return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => values[name] ?? "");
}

const lines = (script: string) =>
  script
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));

/** Words after the command, options (`--autofree`, `--name N`) removed. */
function operands(words: string[]): { name: string | undefined; rest: string[] } {
  let name: string | undefined;
  const rest: string[] = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w === "--name" || w === "-n") name = words[++i];
    else if (w.startsWith("--name=")) name = w.slice(7);
    else if (!w.startsWith("-") || rest.length > 0) rest.push(w);
  }
  return { name, rest };
}

export type Script =
  | { kind: "chain"; url: string }
  | { kind: "boot"; kernel: string; args: string[]; initrds: { name: string; url: string }[] }
  | { kind: "other"; text: string };

/** What an iPXE script makes the machine do next. */
export function readScript(script: string, v: IpxeVars): Script {
  const all = lines(expandIpxe(script, v));
  let kernel: { url: string; args: string[] } | undefined;
  const initrds: { name: string; url: string }[] = [];
  for (const line of all) {
    const words = line.split(/\s+/);
    const { name, rest } = operands(words);
    switch (words[0]) {
      case "chain":
        if (rest[0]) return { kind: "chain", url: rest[0] };
        break;
      case "kernel":
        if (rest[0]) kernel = { url: rest[0], args: rest.slice(1) };
        break;
      case "initrd":
        if (rest[0]) initrds.push({ name: name ?? rest[0].split("?")[0]!.split("/").pop()!, url: rest[0] });
        break;
      case "boot":
        if (kernel) return { kind: "boot", kernel: kernel.url, args: kernel.args, initrds };
    }
  }
  return { kind: "other", text: all.join(" | ").slice(0, 300) };
}

export function kernelArg(args: string[], key: string): string | undefined {
  return args.find((a) => a.startsWith(`${key}=`))?.slice(key.length + 1);
}

/** Undoes the installer's single-quoting for the shell: 'a'\''b' → a'b. */
function unquote(s: string): string {
  return s.replace(/^'|'$/g, "").replace(/'\\''/g, "'");
}

/**
 * The signed URLs the installer script inside an installer Ignition config uses: where it POSTs its reports
 * (`REPORT=`) and where it fetches the installed system's config (`FINAL=`).
 */
export function installerUrls(config: unknown): { report: string; final: string } | undefined {
  const files = (config as { storage?: { files?: { path?: string; contents?: { source?: string } }[] } }).storage
    ?.files;
  const source = files?.find((f) => f.path === "/opt/kindling/install.sh")?.contents?.source;
  if (!source?.startsWith("data:,")) return undefined;
  const script = decodeURIComponent(source.slice("data:,".length));
  const report = /^REPORT=(.*)$/m.exec(script)?.[1];
  const final = /^FINAL=(.*)$/m.exec(script)?.[1];
  return report && final ? { report: unquote(report), final: unquote(final) } : undefined;
}
