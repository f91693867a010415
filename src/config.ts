import { readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { DhcpConfigSchema } from "./dhcp/config.ts";
import { FlatcarConfigSchema } from "./flatcar/config.ts";
import { ConfigError } from "./model/errors.ts";
import { POWER_KEY_ENV, PowerConfigSchema } from "./power/config.ts";
import { PgSettingsSchema } from "./store/pg/settings.ts";
import { TftpConfigSchema } from "./tftp/config.ts";

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const bool = z.preprocess(
  (v) => (v === "true" || v === "1" ? true : v === "false" || v === "0" ? false : v),
  z.boolean(),
);

export const ConfigSchema = z.strictObject({
  dataDir: z.string().default("./data"),
  /**
   * Where the leases live: unset, the SQLite file in the data dir; a `postgres://` URL, a PostgreSQL database
   * that several nodes share (pool settings under `postgres:`).
   */
  database: z
    .string()
    .regex(
      /^postgres(ql)?:\/\/\S+$/,
      "must be a postgres:// or postgresql:// URL (unset: the SQLite file in the data dir)",
    )
    .optional(),
  /** This node's name in the event log and the logs of a database several nodes share; default: the host name. */
  nodeName: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "must be 1-63 letters, digits, '.', '_' or '-'")
    .default(() => hostname().slice(0, 63) || "kindling"),
  /** Connection pool of `database` when it is PostgreSQL (store/pg/settings.ts); ignored on SQLite. */
  postgres: PgSettingsSchema.omit({ url: true }).prefault({}),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Address machines use to reach Kindling; default: the first non-loopback IPv4. */
  advertise: z.ipv4().optional(),
  /** Bearer token for /api/v1; without one, a random token is generated into <dataDir>/api-token. */
  apiToken: z
    .string()
    .min(16, "must be at least 16 characters")
    .regex(/^\S+$/, "must not contain whitespace")
    .optional(),
  /** Events (the boot story and audit log) older than this are deleted, hourly. */
  eventRetentionDays: z.coerce.number().int().min(1).default(90),
  /** Any listener that fails to bind stops start-up (for service units). */
  strictListeners: bool.default(false),
  /**
   * On SIGTERM/SIGINT, running transfers (HTTP downloads, TFTP) get this long to finish; then the remaining
   * connections are closed and the process exits.
   */
  shutdownGraceSeconds: z.coerce.number().min(0).max(600).default(5),
  http: z
    .object({
      host: z.string().default("0.0.0.0"),
      port: port(8080),
      bodyLimit: z.coerce
        .number()
        .int()
        .min(1024)
        .default(1024 * 1024),
    })
    .prefault({}),
  tftp: TftpConfigSchema.prefault({}),
  dhcp: DhcpConfigSchema.prefault({}),
  flatcar: FlatcarConfigSchema.prefault({}),
  power: PowerConfigSchema,
  boot: z
    .object({
      /** Profile for machines nobody registered; unset → they wait and retry until assigned. */
      defaultProfile: z.string().optional(),
      retrySeconds: z.coerce.number().int().min(1).max(3600).default(30),
      /** Lifetime of signed per-machine URLs (Ignition, installer reports). */
      signedUrlSeconds: z.coerce
        .number()
        .int()
        .min(60)
        .default(24 * 3600),
      /**
       * Full DHCP mode: serve a machine's Ignition and take its reports only from the address leased to its
       * MAC, on top of the signed URL.
       */
      requireLeasedIp: bool.default(false),
      /**
       * Machines a boot request created and nobody touched since (no profile, no edit) kept at most; past
       * this the least recently seen of them are forgotten with their events. Anyone can invent MACs.
       */
      maxDiscovered: z.coerce.number().int().min(1).default(10_000),
      /** New machines one client address may add per minute through `/ipxe` (a burst of as many, then that rate). */
      discoveriesPerMinute: z.coerce.number().int().min(1).default(60),
      /** An install that has not reported done or failed this long after it started is marked failed. */
      installDeadlineSeconds: z.coerce.number().int().min(1).default(3600),
      /** Built-in profiles directory. */
      profilesDir: z.string().default(resolve(import.meta.dirname, "..", "profiles")),
    })
    .prefault({}),
});
export type Config = z.infer<typeof ConfigSchema> & { advertise: string };

/** Flags and env names for the settings people set most; anything else goes in the YAML file. */
export const SETTINGS = [
  { flag: "data-dir", env: "KINDLING_DATA_DIR", path: ["dataDir"], help: "data directory (SQLite, token, mirror)" },
  {
    flag: "database",
    env: "KINDLING_DATABASE",
    path: ["database"],
    help: "postgres:// URL of a database shared by several nodes (unset: SQLite in the data dir)",
  },
  {
    flag: "node-name",
    env: "KINDLING_NODE_NAME",
    path: ["nodeName"],
    help: "this node's name in events shared with other nodes (default: the host name)",
  },
  {
    flag: "log-level",
    env: "KINDLING_LOG_LEVEL",
    path: ["logLevel"],
    help: "fatal|error|warn|info|debug|trace|silent",
  },
  {
    flag: "advertise",
    env: "KINDLING_ADVERTISE",
    path: ["advertise"],
    help: "IPv4 address machines use to reach Kindling",
  },
  { flag: "api-token", env: "KINDLING_API_TOKEN", path: ["apiToken"], help: "bearer token for the API" },
  {
    flag: "strict-listeners",
    env: "KINDLING_STRICT_LISTENERS",
    path: ["strictListeners"],
    help: "fail start-up if any listener cannot bind",
  },
  {
    flag: "shutdown-grace-seconds",
    env: "KINDLING_SHUTDOWN_GRACE_SECONDS",
    path: ["shutdownGraceSeconds"],
    help: "how long running transfers may finish on shutdown",
  },
  { flag: "http-host", env: "KINDLING_HTTP_HOST", path: ["http", "host"], help: "HTTP listen address" },
  { flag: "http-port", env: "KINDLING_HTTP_PORT", path: ["http", "port"], help: "HTTP port (0 disables)" },
  { flag: "tftp-host", env: "KINDLING_TFTP_HOST", path: ["tftp", "host"], help: "TFTP listen address" },
  { flag: "tftp-port", env: "KINDLING_TFTP_PORT", path: ["tftp", "port"], help: "TFTP port (0 disables)" },
  { flag: "dhcp-mode", env: "KINDLING_DHCP_MODE", path: ["dhcp", "mode"], help: "off|proxy|full" },
  { flag: "dhcp-port", env: "KINDLING_DHCP_PORT", path: ["dhcp", "port"], help: "DHCP port (0 disables)" },
  { flag: "proxy-port", env: "KINDLING_PROXY_PORT", path: ["dhcp", "proxyPort"], help: "proxyDHCP boot-server port" },
  {
    flag: "default-profile",
    env: "KINDLING_DEFAULT_PROFILE",
    path: ["boot", "defaultProfile"],
    help: "profile for unknown machines",
  },
  {
    flag: "flatcar-origin",
    env: "KINDLING_FLATCAR_ORIGIN",
    path: ["flatcar", "origin"],
    help: "Flatcar release origin URL",
  },
  {
    flag: "flatcar-signing-key",
    env: "KINDLING_FLATCAR_SIGNING_KEY",
    path: ["flatcar", "signingKey"],
    help: "Flatcar image signing key file",
  },
  {
    flag: "flatcar-signing-fingerprint",
    env: "KINDLING_FLATCAR_SIGNING_FINGERPRINT",
    path: ["flatcar", "signingFingerprint"],
    help: "pinned primary key fingerprint",
  },
] as const;

type Raw = Record<string, unknown>;

function setPath(target: Raw, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Raw;
  }
  node[path[path.length - 1]!] = value;
}

/** First non-loopback IPv4 address of this host, or loopback if there is none. */
export function firstNonLoopbackIPv4(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

export interface ConfigSources {
  /** Path of a YAML config file. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values keyed by flag name (`http-port`), as commander gives them. */
  flags?: Record<string, unknown>;
  /** Extra values merged over everything (tests). */
  overrides?: Raw;
}

function readFileLayer(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new ConfigError(`config file ${file}: top level must be a mapping`);
  return doc as Raw;
}

function deepMerge(base: Raw, over: Raw): Raw {
  const out: Raw = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)
        ? deepMerge(b as Raw, v as Raw)
        : v;
  }
  return out;
}

/**
 * Builds the effective configuration: YAML file, then KINDLING_* env, then flags, then overrides.
 * Throws ConfigError naming the key (and where it came from) for the first bad value.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const origin = new Map<string, string>();
  let raw: Raw = sources.file ? readFileLayer(sources.file) : {};
  for (const s of SETTINGS) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== "") {
      setPath(raw, s.path, fromEnv);
      origin.set(s.path.join("."), `env ${s.env}`);
    }
    const fromFlag = sources.flags?.[s.flag];
    if (fromFlag !== undefined) {
      setPath(raw, s.path, fromFlag);
      origin.set(s.path.join("."), `flag --${s.flag}`);
    }
  }
  for (const [name, key] of POWER_KEY_ENV) {
    if (env[name]) setPath(raw, ["power", key], env[name]);
    if (env[name]) origin.set(`power.${key}`, `env ${name}`);
  }
  if (sources.overrides) raw = deepMerge(raw, sources.overrides);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.join(".") || "(top level)";
    const from = origin.get(key) ?? (sources.file ? `file ${sources.file}` : "defaults");
    throw new ConfigError(`invalid config: ${key}: ${issue.message} (from ${from})`);
  }
  const cfg = parsed.data;
  if (cfg.boot.requireLeasedIp && cfg.dhcp.mode !== "full")
    throw new ConfigError(
      `invalid config: boot.requireLeasedIp: needs dhcp.mode full (Kindling knows leases only when it hands them out)`,
    );
  return { ...cfg, dataDir: resolve(cfg.dataDir), advertise: cfg.advertise ?? firstNonLoopbackIPv4() };
}
