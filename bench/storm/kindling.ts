/**
 * Kindling as an operator runs it for a rack: `kindling serve` in full DHCP mode on the server namespace's
 * link, TFTP on 69, HTTP on 8080, default log level, the staged release in its mirror, the built-in
 * `flatcar-install` profile.
 */
import { execFileSync } from "node:child_process";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { assetsDir } from "../../src/files/assets.ts";
import { kindlingCommand } from "./command.ts";
import { profilerFlags } from "./profile.ts";
import type { StagedRelease } from "./release.ts";
import { CIDR, SERVER_IF, SERVER_IP, type Topology } from "./topology.ts";
import { waitForHttp } from "./wait.ts";

export const HTTP_PORT = 8080;
export const API_TOKEN = "storm-api-token-0123456789abcdef";
export const PROFILE = "flatcar-install";

export interface RunningServer {
  stop(): Promise<void>;
}

/** `profileDir`: run under V8's CPU profiler, writing the profile there at exit (see profile.ts). */
export async function startKindling(
  t: Topology,
  dir: string,
  release: StagedRelease,
  profileDir?: string,
): Promise<RunningServer> {
  const dataDir = join(dir, "data");
  mkdirSync(dataDir, { recursive: true });
  // A fresh database every run; the mirror is shared by hard links (no copy of the large files).
  execFileSync("cp", ["-al", release.assetsDir, assetsDir(dataDir)]);
  const config = {
    dataDir,
    advertise: SERVER_IP,
    apiToken: API_TOKEN,
    strictListeners: true,
    http: { host: "0.0.0.0", port: HTTP_PORT },
    tftp: { port: 69 },
    dhcp: {
      mode: "full",
      interfaces: [SERVER_IF],
      subnets: [{ cidr: CIDR, ranges: [t.pool], leaseSeconds: 3600 }],
    },
    flatcar: { signingKey: release.keyFile, signingFingerprint: release.fingerprint },
  };
  const configFile = join(dir, "kindling.yaml");
  writeFileSync(configFile, stringify(config));
  const [cmd, ...args] = kindlingCommand();
  const prof = profileDir ? profilerFlags(profileDir) : [];
  const child = t.lab.adopt(t.server.spawn([...t.serverCpu, cmd!, ...prof, ...args, "serve", "--config", configFile]));
  const log = createWriteStream(join(dir, "kindling.log"));
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  await waitForHttp(t.server, `http://${SERVER_IP}:${HTTP_PORT}/healthz`, child);
  return {
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
