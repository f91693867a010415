import { mkdirSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createAdaptorServer } from "@hono/node-server";
import { attributeByIp, RecentClients } from "./boot/attribution.ts";
import { ProfileFileError, readProfileDir } from "./boot/builtin-profiles.ts";
import { IgnitionConfigs } from "./boot/configs.ts";
import { Lifecycle } from "./boot/lifecycle-service.ts";
import { grubMainConfig } from "./boot/render-grub.ts";
import { BootService } from "./boot/service.ts";
import { Signer } from "./boot/sign.ts";
import type { Config } from "./config.ts";
import { DhcpServer } from "./dhcp/server.ts";
import { Mirror } from "./flatcar/mirror.ts";
import { checkProfile } from "./http/api/profile-check.ts";
import { createApp } from "./http/app.ts";
import { tryListen } from "./listen.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics/metrics.ts";
import { Store } from "./store/index.ts";
import { LeaseStore } from "./store/leases.ts";
import { tftpRoots } from "./tftp/files.ts";
import { stageSignedLoaders } from "./tftp/loaders.ts";
import { TftpServer } from "./tftp/server.ts";
import { bootVirtualFiles } from "./tftp/virtual.ts";
import { resolveApiToken } from "./token.ts";

export interface Kindling {
  config: Config;
  store: Store;
  apiToken: string;
  /** Bound HTTP port, undefined when disabled or failed to bind. */
  httpPort: number | undefined;
  /** Running protocol servers (undefined when disabled or failed to bind). */
  tftp: TftpServer | undefined;
  dhcp: DhcpServer | undefined;
  close(): Promise<void>;
}

/** Base URL machines use: the advertised address and the HTTP port (80 left implicit). */
export function serverUrl(config: Config): string {
  return `http://${config.advertise}${config.http.port === 80 ? "" : `:${config.http.port}`}`;
}

export const assetsRoot = (config: Config) => join(config.dataDir, "assets");

export async function startKindling(config: Config, log: Logger): Promise<Kindling> {
  mkdirSync(config.dataDir, { recursive: true });
  mkdirSync(assetsRoot(config), { recursive: true });
  const store = Store.open(config.dataDir);
  const closers: (() => Promise<void> | void)[] = [() => store.close()];
  try {
    for (const p of readProfileDir(config.boot.profilesDir)) {
      try {
        checkProfile(p);
      } catch (err) {
        throw new ProfileFileError(`${config.boot.profilesDir}/${p.name}.yaml: ${(err as Error).message}`);
      }
      store.profiles.putBuiltin(p);
    }
    const token = resolveApiToken(config.apiToken, config.dataDir);
    if (token.created) log.warn({ file: token.file }, `generated an API token; it is in ${token.file}`);
    const signer = Signer.fromFile(join(config.dataDir, "signing-key"));
    const server = serverUrl(config);
    const mirror = new Mirror({ root: assetsRoot(config), config: config.flatcar, events: store.events, log });
    const boot = new BootService(
      store,
      {
        server,
        defaultProfile: config.boot.defaultProfile,
        retrySeconds: config.boot.retrySeconds,
        signedUrlSeconds: config.boot.signedUrlSeconds,
      },
      mirror,
      signer,
      log,
    );
    // The iPXE binaries: served by TFTP to PXE ROMs and at /ipxe-bin/ to UEFI HTTP Boot, from the same roots.
    const bootRoots = await tftpRoots(config.tftp.roots, join(config.dataDir, "ipxe-bin"));
    // Last, so a configured root's own shim or GRUB wins: Debian's signed loaders for the GRUB path.
    const loaders = join(config.dataDir, "loaders");
    await stageSignedLoaders(loaders);
    bootRoots.push(loaders);
    const lifecycle = new Lifecycle(store, log);
    // Read-only here: the DHCP server writes leases through its own LeaseStore.
    const leases = new LeaseStore(store.db);
    // TFTP and asset requests name only an IP: DHCP leases and /ipxe requests teach which MAC is behind it.
    const recent = new RecentClients();
    const attributed = attributeByIp(store.events, recent);
    const configs = new IgnitionConfigs(boot, mirror, server);
    // Declared before the HTTP listener starts: /metrics reads whichever servers are running when scraped.
    let tftp: TftpServer | undefined;
    let dhcp: DhcpServer | undefined;
    const metrics = new Metrics({
      machinesByState: () => store.machines.countByState(),
      dhcp: () => dhcp?.stats(),
      tftp: () => tftp?.stats(),
      subscribe: (listener) => store.events.subscribe(listener),
    });
    closers.push(() => metrics.close());
    const app = createApp({
      store,
      boot,
      configs,
      lifecycle,
      mirror,
      signer,
      log,
      server,
      apiToken: token.token,
      metrics,
      recent,
      leasedIp: config.boot.requireLeasedIp ? (mac) => leases.boundIp(mac) : undefined,
      bodyLimit: config.http.bodyLimit,
      assetsRoots: () => [assetsRoot(config)],
      ipxeBinRoots: () => bootRoots,
    });

    // Installs that never report back become `failed` instead of `installing` forever.
    const deadline = config.boot.installDeadlineSeconds;
    const watchdog = setInterval(() => lifecycle.sweep(deadline), Math.min(30_000, (deadline * 1000) / 2));
    watchdog.unref();
    closers.push(() => clearInterval(watchdog));
    const pruneEvents = () => {
      const removed = store.events.prune(config.eventRetentionDays);
      if (removed > 0) log.info({ removed, days: config.eventRetentionDays }, "pruned old events");
    };
    pruneEvents();
    const retention = setInterval(pruneEvents, 3600_000);
    retention.unref();
    closers.push(() => clearInterval(retention));

    let httpPort: number | undefined;
    if (config.http.port !== 0) {
      const { host, port } = config.http;
      const http = await tryListen(
        { what: "HTTP", flag: "http-port", host, port, strict: config.strictListeners, log },
        () => listenHttp(app.fetch, host, port),
      );
      if (http) {
        httpPort = (http.address() as AddressInfo).port;
        closers.push(
          () =>
            new Promise<void>((res) => {
              http.close(() => res());
              // Idle keep-alive sockets (iPXE, curl) would otherwise hold close() open until they time out.
              http.closeIdleConnections();
            }),
        );
        log.info({ url: `http://${host}:${httpPort}`, advertise: server }, "HTTP listening");
      }
    }

    if (config.tftp.port !== 0) {
      const { host, port } = config.tftp;
      tftp = await tryListen({ what: "TFTP", flag: "tftp-port", host, port, strict: config.strictListeners, log }, () =>
        TftpServer.start({
          config: config.tftp,
          roots: bootRoots,
          events: attributed,
          log,
          virtual: bootVirtualFiles({
            grubMain: () => grubMainConfig(config.boot.retrySeconds),
            grubMachine: (mac) => {
              const answer = boot.grub(mac);
              log.info({ route: "tftp grub", mac: answer.mac ?? mac, outcome: answer.outcome }, "boot request");
              return answer.config;
            },
            assetsRoots: [assetsRoot(config)],
          }),
        }),
      );
      // Running transfers (a rack's worth of iPXE downloads) get a few seconds to finish on shutdown.
      if (tftp) closers.push(() => tftp!.close(5000));
    }

    if (config.dhcp.mode !== "off" && config.dhcp.port !== 0) {
      const { port } = config.dhcp;
      dhcp = await tryListen(
        {
          what: `DHCP (${config.dhcp.mode} mode)`,
          flag: "dhcp-port",
          host: "0.0.0.0",
          port,
          strict: config.strictListeners,
          log,
        },
        () =>
          DhcpServer.start({
            config: config.dhcp,
            advertise: config.advertise,
            httpPort: httpPort ?? config.http.port,
            tftpEnabled: tftp !== undefined,
            db: store.db,
            machines: store.machines,
            events: attributed,
            log,
            loaderFor: (mac) => boot.loaderFor(mac),
          }),
      );
      if (dhcp) closers.push(() => dhcp!.close());
    }

    let closed = false;
    return {
      config,
      store,
      apiToken: token.token,
      httpPort,
      tftp,
      dhcp,
      async close() {
        if (closed) return;
        closed = true;
        for (const c of closers.reverse()) await c();
      },
    };
  } catch (err) {
    for (const c of closers.reverse()) await c();
    throw err;
  }
}

function listenHttp(
  fetch: (req: Request, env: unknown) => Response | Promise<Response>,
  host: string,
  port: number,
): Promise<Server> {
  const server = createAdaptorServer({ fetch, hostname: host, port }) as Server;
  return new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(port, host, () => {
      server.off("error", rej);
      res(server);
    });
  });
}
