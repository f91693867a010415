import { mkdirSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createAdaptorServer } from "@hono/node-server";
import { attributeByIp, RecentClients } from "./boot/attribution.ts";
import { ProfileFileError, readProfileDir } from "./boot/builtin-profiles.ts";
import { IgnitionConfigs } from "./boot/configs.ts";
import { Machines } from "./boot/machines.ts";
import { grubMainConfig } from "./boot/render-grub.ts";
import { BootService } from "./boot/service.ts";
import { Signer } from "./boot/sign.ts";
import type { Config } from "./config.ts";
import { DhcpServer } from "./dhcp/server.ts";
import { assetsDir } from "./files/assets.ts";
import { Mirror } from "./flatcar/mirror.ts";
import { checkProfile } from "./http/api/profile-check.ts";
import { createApp, type KindlingApp } from "./http/app.ts";
import { putInFront } from "./http/fast/front.ts";
import { CoalescedLog } from "./limits/coalesce.ts";
import { tryListen } from "./listen.ts";
import { DataDirLock } from "./lock/data-dir.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics/metrics.ts";
import { startPower } from "./power/start.ts";
import { Store } from "./store/index.ts";
import { openLeaseDatabase } from "./store/lease-database.ts";
import { LeaseStore } from "./store/leases.ts";
import { PgSecrets } from "./store/pg/secrets.ts";
import { PgSessionStore } from "./store/pg/sessions.ts";
import { SqliteSessionStore } from "./store/sessions.ts";
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
  /**
   * Stops taking requests on every listener at once, lets running transfers finish for up to `graceMs`
   * (default: the `shutdownGraceSeconds` setting), closes whatever is still open, then the database and the
   * data-dir lock.
   */
  close(graceMs?: number): Promise<void>;
}

/** Base URL machines use: the advertised address and the HTTP port (80 left implicit). */
export function serverUrl(config: Config): string {
  return `http://${config.advertise}${config.http.port === 80 ? "" : `:${config.http.port}`}`;
}

export const assetsRoot = (config: Config) => assetsDir(config.dataDir);

export async function startKindling(config: Config, log: Logger): Promise<Kindling> {
  mkdirSync(config.dataDir, { recursive: true });
  // Before anything else touches the data dir: a second instance must not even run migrations.
  const dirLock = DataDirLock.acquire(config.dataDir);
  // Run in reverse order on close, after every listener has drained.
  const closers: (() => Promise<void> | void)[] = [() => dirLock.release()];
  // Listeners: stop taking requests, finish what runs until the deadline (ms since the epoch), end the rest.
  const drains: ((deadline: number) => Promise<void>)[] = [];
  const closeAll = async (deadline: number) => {
    await Promise.all(drains.splice(0).map((d) => d(deadline)));
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    mkdirSync(assetsRoot(config), { recursive: true });
    const store = Store.open(config.dataDir, { maxDiscovered: config.boot.maxDiscovered, node: config.nodeName });
    closers.push(() => store.close());
    const sqliteFile = join(config.dataDir, "kindling.db");
    const database = await openLeaseDatabase(
      { url: config.database, postgres: config.postgres, sqlite: { db: store.db, file: sqliteFile } },
      log,
    );
    // Closed after the DHCP server has drained (closers run in reverse, after the listeners).
    closers.push(() => database.close());
    // PostgreSQL holds the shared state; this node's file becomes its replica (store/index.ts share).
    const unshare = database.pg && (await store.share(database.pg, log));
    if (unshare) {
      // Closed before the pool (closers run in reverse): what the later closers record is shipped too.
      closers.push(unshare);
      log.info(
        { engine: "postgres", database: database.where, replica: sqliteFile, node: config.nodeName },
        "store: PostgreSQL holds the shared state (machines, profiles, groups, BMCs, events, leases, secrets, sessions); this node reads its replica in the SQLite file",
      );
    } else log.info({ engine: "sqlite", database: sqliteFile }, "store: SQLite");
    // What unauthenticated HTTP clients can repeat at any rate becomes a bounded number of events and log lines,
    // written through the boot requests' group commit.
    const coalesced = new CoalescedLog({ events: store.history, log });
    closers.push(() => coalesced.close());
    for (const p of readProfileDir(config.boot.profilesDir)) {
      try {
        checkProfile(p);
      } catch (err) {
        throw new ProfileFileError(`${config.boot.profilesDir}/${p.name}.yaml: ${(err as Error).message}`);
      }
      await store.writes.putBuiltinProfile(p);
    }
    const shared = database.pg && new PgSecrets(database.pg);
    const token = await resolveApiToken(config.apiToken, config.dataDir, shared);
    const { signer, source: keySource } = await Signer.load(join(config.dataDir, "signing-key"), shared);
    log.info(
      { apiToken: token.source, signingKey: keySource },
      "secrets: where the API token and URL signing key come from",
    );
    if (token.source.startsWith("generated"))
      log.warn({ file: token.file }, `generated an API token; it is in ${token.file}`);
    const server = serverUrl(config);
    const mirror = new Mirror({ root: assetsRoot(config), config: config.flatcar, events: store.events, log });
    // The one owner of every machine's fate (boot/machines.ts): DHCP, /ipxe, the API and the console call it.
    const machines = new Machines({
      store,
      releases: mirror,
      discoveriesPerMinute: config.boot.discoveriesPerMinute,
      requests: coalesced,
      log,
    });
    const boot = new BootService(
      store,
      machines,
      {
        server,
        defaultProfile: config.boot.defaultProfile,
        retrySeconds: config.boot.retrySeconds,
        signedUrlSeconds: config.boot.signedUrlSeconds,
      },
      mirror,
      signer,
      coalesced,
    );
    // The iPXE binaries: served by TFTP to PXE ROMs and at /ipxe-bin/ to UEFI HTTP Boot, from the same roots.
    const bootRoots = await tftpRoots(config.tftp.roots, join(config.dataDir, "ipxe-bin"));
    // Last, so a configured root's own shim or GRUB wins: Debian's signed loaders for the GRUB path.
    const loaders = join(config.dataDir, "loaders");
    await stageSignedLoaders(loaders);
    bootRoots.push(loaders);
    const power = await startPower(config, store, machines, log);
    closers.push(() => power.close());
    // Read-only here: the DHCP server writes leases through its own repository.
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
      database: () => ({ engine: database.engine, available: database.available(), pool: database.pool() }),
      replication: () => store.replication(),
    });
    database.onQuery((ms, ok) => metrics.observeQuery(ms, ok));
    closers.push(() => metrics.close());
    const repository = database.repository;
    const app = createApp({
      store,
      boot,
      configs,
      machines,
      power,
      mirror,
      signer,
      log,
      server,
      apiToken: token.token,
      sessions: database.pg ? new PgSessionStore(database.pg) : new SqliteSessionStore(store.db),
      metrics,
      recent,
      // On PostgreSQL the DHCP server's view (following every node's writes) answers without a round trip;
      // a node serving no DHCP asks PostgreSQL.
      leasedIp: config.boot.requireLeasedIp
        ? repository
          ? async (mac) => dhcp?.boundIp(mac) ?? (await repository.boundIp(mac, Date.now()))
          : async (mac) => leases.boundIp(mac)
        : undefined,
      database: { ...database, ...(unshare ? { replication: () => ({ ...store.replication() }) } : {}) },
      bodyLimit: config.http.bodyLimit,
      coalesced,
      assetsRoots: () => [assetsRoot(config)],
      ipxeBinRoots: () => bootRoots,
    });

    // Installs that never report back become `failed` instead of `installing` forever.
    closers.push(machines.startWatchdog(config.boot.installDeadlineSeconds));
    const pruneEvents = async () => {
      try {
        const removed = await store.events.prune(config.eventRetentionDays);
        if (removed > 0) log.info({ removed, days: config.eventRetentionDays }, "pruned old events");
      } catch (err) {
        log.warn({ err }, "pruning old events failed; the next hour tries again");
      }
    };
    void pruneEvents();
    const retention = setInterval(pruneEvents, 3600_000);
    retention.unref();
    closers.push(() => clearInterval(retention));

    let httpPort: number | undefined;
    if (config.http.port !== 0) {
      const { host, port } = config.http;
      const http = await tryListen(
        { what: "HTTP", flag: "http-port", host, port, strict: config.strictListeners, log },
        () => listenHttp(app, host, port),
      );
      if (http) {
        httpPort = (http.address() as AddressInfo).port;
        drains.push((deadline) => drainHttp(http, deadline, log));
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
            grubMachine: (mac, ip) => boot.grub(mac, ip).config,
            assetsRoots: [assetsRoot(config)],
          }),
        }),
      );
      // Running transfers (a rack's worth of iPXE downloads) get the shutdown grace to finish.
      if (tftp) drains.push((deadline) => tftp!.close(Math.max(0, deadline - Date.now())));
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
            ...(database.repository
              ? {
                  leaseDatabase: {
                    repository: database.repository,
                    available: () => database.available(),
                    replayFile: join(config.dataDir, "lease-replay.json"),
                  },
                  // Nodes sharing a database start their next-fit cursors apart.
                  startAt: Math.floor(Math.random() * 2 ** 31),
                }
              : {}),
            coalesced,
            machines,
            events: attributed,
            log,
            bootFor: (machine) => boot.dhcpBoot(machine),
          }),
      );
      if (dhcp) drains.push(() => dhcp!.close());
    }
    dirLock.describe(listenerNames(config, httpPort, tftp, dhcp));

    let closed = false;
    return {
      config,
      store,
      apiToken: token.token,
      httpPort,
      tftp,
      dhcp,
      async close(graceMs = config.shutdownGraceSeconds * 1000) {
        if (closed) return;
        closed = true;
        await closeAll(Date.now() + graceMs);
      },
    };
  } catch (err) {
    await closeAll(Date.now());
    throw err;
  }
}

/** How a second instance on this data dir names this one's listeners (see DataDirLock). */
function listenerNames(
  config: Config,
  httpPort: number | undefined,
  tftp: TftpServer | undefined,
  dhcp: DhcpServer | undefined,
): string[] {
  const out: string[] = [];
  if (httpPort !== undefined) out.push(`HTTP ${config.http.host}:${httpPort}`);
  if (tftp) out.push(`TFTP ${tftp.address.host}:${tftp.address.port}`);
  if (dhcp) {
    const proxy = config.dhcp.mode === "proxy" && config.dhcp.proxyPort ? ` and ${config.dhcp.proxyPort}` : "";
    out.push(`DHCP (${config.dhcp.mode}) on UDP ${config.dhcp.port}${proxy}`);
  }
  return out;
}

/**
 * Stops accepting and lets running requests finish until `deadline`, closing keep-alive sockets (iPXE, curl) as
 * soon as they are idle; then destroys every connection still open: a slow download, or a client that never
 * finishes its headers, must not hold the process past the grace.
 */
function drainHttp(http: Server, deadline: number, log: Logger): Promise<void> {
  return new Promise<void>((res) => {
    const idle = setInterval(() => http.closeIdleConnections(), 100);
    const force = setTimeout(
      () => {
        log.warn("shutdown grace over: closing the HTTP connections still open");
        http.closeAllConnections();
      },
      Math.max(0, deadline - Date.now()),
    );
    http.close(() => {
      clearInterval(idle);
      clearTimeout(force);
      res();
    });
    http.closeIdleConnections();
  });
}

function listenHttp(app: KindlingApp, host: string, port: number): Promise<Server> {
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host, port }) as Server;
  putInFront(server, app.front);
  return new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(port, host, () => {
      server.off("error", rej);
      res(server);
    });
  });
}
