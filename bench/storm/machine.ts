/**
 * One simulated machine's boot, from power-on to the installer's last report, with each step timed. It
 * follows only what the servers tell it (boot file from DHCP, URLs from scripts and configs), so the same
 * code boots from Kindling and from dnsmasq + nginx.
 */
import { Agent } from "node:http";
import { performance } from "node:perf_hooks";
import type { DhcpPort, Lease } from "./dhcp-client.ts";
import { call } from "./http-client.ts";
import type { MachineResult, MachineSpec, Stage } from "./plan.ts";
import { installerUrls, kernelArg, readScript } from "./scripts.ts";
import { tftpGet } from "./tftp-client.ts";

export interface Context {
  dhcp: DhcpPort;
  server: string;
  /** performance.now() at the storm's start. */
  t0: number;
  kernelBytes: number;
  initrdBytes: number;
  signal: AbortSignal;
}

const BOOT_FILE = { bios: "undionly.kpxe", uefi: "ipxe.efi" } as const;
/** Block sizes the ROMs ask for: Intel's BIOS PXE and EDK2 (RFC 2348's largest on a 1500-byte link). */
const BLKSIZE = { bios: 1456, uefi: 1468 } as const;

class StageFailure extends Error {
  constructor(
    readonly stage: Stage,
    message: string,
    readonly retries: number,
  ) {
    super(message);
  }
}

const retriesOf = (err: unknown) => (err as { retries?: number }).retries ?? 0;

export async function bootMachine(spec: MachineSpec, ctx: Context): Promise<MachineResult> {
  const result: MachineResult = { mac: spec.mac, firmware: spec.firmware, arrivalMs: spec.arrivalMs, stages: {} };
  const now = () => performance.now() - ctx.t0;
  const step = async <T>(stage: Stage, fn: () => Promise<{ value: T; retries: number }>): Promise<T> => {
    const start = now();
    try {
      const { value, retries } = await fn();
      result.stages[stage] = { start, end: now(), retries };
      return value;
    } catch (err) {
      if (err instanceof StageFailure) throw err;
      throw new StageFailure(stage, (err as Error).message, retriesOf(err));
    }
  };
  const fail = (stage: Stage, message: string): never => {
    throw new StageFailure(stage, message, 0);
  };
  const who = { mac: spec.mac, uuid: spec.uuid, firmware: spec.firmware };
  const lease = async (client: "firmware" | "ipxe"): Promise<{ value: Lease; retries: number }> => {
    const l = await ctx.dhcp.dora(who, client, ctx.server, ctx.signal);
    return { value: l, retries: l.retries };
  };
  const agents: Agent[] = [];
  const http = (ip: string) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    return (method: "GET" | "POST", url: string, keep: boolean, body?: string) =>
      call({ method, url, localAddress: ip, agent, keep, signal: ctx.signal, ...(body === undefined ? {} : { body }) });
  };
  const json = (stage: Stage, body: Buffer): unknown => {
    try {
      return JSON.parse(body.toString("utf8"));
    } catch {
      return fail(stage, `not JSON: ${body.toString("utf8", 0, 200)}`);
    }
  };

  try {
    // Firmware: DHCP, then the iPXE binary for its architecture over TFTP.
    const first = await step("dhcp-firmware", () => lease("firmware"));
    result.ip = first.ip;
    if (first.file !== BOOT_FILE[spec.firmware])
      fail("dhcp-firmware", `offered boot file ${JSON.stringify(first.file)}, not ${BOOT_FILE[spec.firmware]}`);
    await step("tftp", async () => {
      const t = await tftpGet({
        server: first.nextServer,
        file: first.file,
        localIp: first.ip,
        blksize: BLKSIZE[spec.firmware],
        signal: ctx.signal,
      });
      return { value: t.bytes, retries: t.retries };
    });

    // iPXE: its own DHCP, the first script, the machine's script, kernel and initrd.
    const second = await step("dhcp-ipxe", () => lease("ipxe"));
    result.ip = second.ip;
    if (!/^https?:\/\//.test(second.file)) fail("dhcp-ipxe", `iPXE was offered ${JSON.stringify(second.file)}`);
    const ipxe = http(second.ip);
    const vars = { mac: spec.mac, uuid: spec.uuid, firmware: spec.firmware };
    const entry = await step("boot.ipxe", async () => {
      const a = await ipxe("GET", second.file, true);
      return { value: readScript(a.body.toString("utf8"), vars), retries: a.retries };
    });
    if (entry.kind !== "chain") return fail("boot.ipxe", `expected a chain, got ${JSON.stringify(entry)}`);
    const chainUrl = entry.url;
    const plan = await step("ipxe", async () => {
      const a = await ipxe("GET", chainUrl, true);
      return { value: readScript(a.body.toString("utf8"), vars), retries: a.retries };
    });
    if (plan.kind !== "boot") return fail("ipxe", `no kernel to boot: ${JSON.stringify(plan)}`);
    await step("kernel", async () => {
      const a = await ipxe("GET", plan.kernel, false);
      if (a.bytes !== ctx.kernelBytes) fail("kernel", `kernel of ${a.bytes} bytes, expected ${ctx.kernelBytes}`);
      return { value: a.bytes, retries: a.retries };
    });
    await step("initrd", async () => {
      let bytes = 0;
      let retries = 0;
      for (const i of plan.initrds) {
        const a = await ipxe("GET", i.url, false);
        bytes += a.bytes;
        retries += a.retries;
      }
      if (bytes !== ctx.initrdBytes) fail("initrd", `initrds of ${bytes} bytes, expected ${ctx.initrdBytes}`);
      return { value: bytes, retries };
    });

    // The booted installer: Ignition fetches its config; the install script reports and fetches the final one.
    const os = http(second.ip);
    const ignitionUrl = kernelArg(plan.args, "ignition.config.url");
    if (!ignitionUrl) fail("ignition", "no ignition.config.url in the kernel arguments");
    const urls = await step("ignition", async () => {
      const a = await os("GET", ignitionUrl!, true);
      const found = installerUrls(json("ignition", a.body));
      if (!found) fail("ignition", "no installer (REPORT=, FINAL=) in the Ignition config");
      return { value: found!, retries: a.retries };
    });
    await step("report-started", async () => {
      const a = await os("POST", `${urls.report}&kind=install-started`, true, "installer booted: storm\n");
      return { value: a.status, retries: a.retries };
    });
    await step("ignition-final", async () => {
      const a = await os("GET", urls.final, true);
      const config = json("ignition-final", a.body) as { ignition?: { version?: string } };
      if (!config.ignition?.version) fail("ignition-final", "final config has no ignition.version");
      return { value: a.bytes, retries: a.retries };
    });
    await step("report-done", async () => {
      const a = await os("POST", `${urls.report}&kind=install-done`, true, "storm: flatcar-install not run\n");
      return { value: a.status, retries: a.retries };
    });
  } catch (err) {
    if (!(err instanceof StageFailure)) throw err;
    result.failure = { stage: err.stage, reason: err.message, retries: err.retries };
  } finally {
    for (const a of agents) a.destroy();
  }
  return result;
}
