import { type Command, Option } from "commander";
import { pino } from "pino";
import { type Config, loadConfig } from "../config.ts";
import { assetsDir } from "../files/assets.ts";
import { DownloadError } from "../flatcar/download.ts";
import { Mirror } from "../flatcar/mirror.ts";
import { formatBytes, ProgressReporter } from "../flatcar/progress.ts";
import type { PinnedRelease } from "../flatcar/prune.ts";
import { boardOf, ReleaseRequestSchema } from "../flatcar/release.ts";
import { ConfigError } from "../model/errors.ts";
import { ArchSchema } from "../model/machine.ts";
import { Store } from "../store/index.ts";
import { CliError } from "./client.ts";
import { print, table } from "./table.ts";

type Globals = { config?: string; dataDir?: string; json?: boolean };
type MirrorFlags = {
  flatcarOrigin?: string;
  flatcarSigningKey?: string;
  flatcarSigningFingerprint?: string;
  origin?: string;
  signingKey?: string;
  signingFingerprint?: string;
};

/**
 * The mirror flags, spelled as `kindling serve` spells them (`--flatcar-origin`, …). The short spellings
 * these commands had first (`--origin`, `--signing-key`, `--signing-fingerprint`) stay as hidden aliases.
 */
function mirrorOptions(cmd: Command, withOrigin: boolean): Command {
  const flags: [string, string, string][] = [
    ["signing-key", "<file>", "armored image signing key (default: fetched from flatcar.org)"],
    ["signing-fingerprint", "<fpr>", "pinned primary key fingerprint"],
  ];
  if (withOrigin) flags.unshift(["origin", "<url>", "release origin; {channel} and {board} are substituted"]);
  for (const [name, arg, help] of flags) {
    cmd.option(`--flatcar-${name} ${arg}`, help);
    cmd.addOption(new Option(`--${name} ${arg}`).hideHelp());
  }
  return cmd;
}

/** Config for the local commands: the file, env, `--data-dir`, and the mirror flags given here. */
function configFor(cmd: Command): Config {
  const g = cmd.optsWithGlobals<Globals & MirrorFlags>();
  const flatcar: Record<string, string> = {};
  const origin = g.flatcarOrigin ?? g.origin;
  const signingKey = g.flatcarSigningKey ?? g.signingKey;
  const signingFingerprint = g.flatcarSigningFingerprint ?? g.signingFingerprint;
  if (origin) flatcar.origin = origin;
  if (signingKey) flatcar.signingKey = signingKey;
  if (signingFingerprint) flatcar.signingFingerprint = signingFingerprint;
  return loadConfig({ file: g.config, flags: g.dataDir ? { "data-dir": g.dataDir } : {}, overrides: { flatcar } });
}

/** A download that failed says where it went and what else the user can do. */
const OFFLINE_HINT =
  "the release origin could not be reached: check --flatcar-origin (or flatcar.origin / KINDLING_FLATCAR_ORIGIN), " +
  "or copy the release files with their .sig files here and run `kindling assets import DIR --channel …`";

/**
 * Runs `fn` with a mirror over `<dataDir>/assets` whose events go to the data dir's event log (so the UI and
 * API show syncs done from the command line too), and turns mirror failures into one-line CLI errors.
 */
async function withMirror<T>(cmd: Command, fn: (m: Mirror, store: Store) => Promise<T>): Promise<T> {
  const config = configFor(cmd);
  const store = Store.open(config.dataDir);
  const log = pino({ level: config.logLevel === "info" ? "warn" : config.logLevel }, pino.destination(2));
  try {
    const mirror = new Mirror({
      root: assetsDir(config.dataDir),
      config: config.flatcar,
      events: store.events,
      log,
    });
    return await fn(mirror, store);
  } catch (err) {
    if (err instanceof DownloadError) throw new CliError(`${err.message}\n${OFFLINE_HINT}`);
    if (err instanceof Error && !(err instanceof CliError) && !(err instanceof ConfigError))
      throw new CliError(err.message);
    throw err;
  } finally {
    store.close();
  }
}

const arch = (v: string) => {
  const r = ArchSchema.safeParse(v);
  if (!r.success) throw new CliError(`--arch must be amd64 or arm64, got ${JSON.stringify(v)}`);
  return r.data;
};

/** Versions profiles pin (not `current`), which prune must keep. */
function pinnedByProfiles(store: Store): PinnedRelease[] {
  return store.profiles
    .list()
    .flatMap((p) =>
      p.flatcar && p.flatcar.version !== "current"
        ? [{ channel: p.flatcar.channel, version: p.flatcar.version, arch: p.flatcar.arch }]
        : [],
    );
}

export function registerAssetsCommands(program: Command): void {
  const assets = program
    .command("assets")
    .description("the verified Flatcar mirror in <data-dir>/assets (works without a running server)");
  const json = (cmd: Command) => cmd.optsWithGlobals<Globals>().json === true;

  const sync = assets
    .command("sync")
    .description("download a release and verify every file's signature before it can be served")
    .requiredOption("--channel <channel>", "alpha, beta, stable, lts or lts-YYYY")
    .option("--version <version>", "release such as 4593.2.5, or current", "current")
    .option("--arch <arch>", "amd64 or arm64", arch, "amd64");
  mirrorOptions(sync, true).action(
    async (o: { channel: string; version: string; arch: "amd64" | "arm64" }, cmd: Command) => {
      const parsed = ReleaseRequestSchema.safeParse({ channel: o.channel, version: o.version, arch: o.arch });
      if (!parsed.success)
        throw new CliError(parsed.error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join("; "));
      const r = parsed.data;
      await withMirror(cmd, async (mirror) => {
        const progress = new ProgressReporter(process.stderr);
        const { version } = await mirror.sync(r, { onProgress: json(cmd) ? undefined : (p) => progress.update(p) });
        progress.finishFile();
        const dir = mirror.releaseDir(r.channel, r.arch, version);
        print(
          json(cmd),
          { channel: r.channel, board: boardOf(r.arch), version, dir },
          () =>
            `verified Flatcar ${r.channel} ${boardOf(r.arch)} ${version}${r.version === "current" ? " (current)" : ""} in ${dir}`,
        );
      });
    },
  );

  assets
    .command("list")
    .description("verified releases in the mirror")
    .action(async (_o, cmd: Command) => {
      await withMirror(cmd, async (mirror) => {
        const status = await mirror.list();
        print(json(cmd), status, () =>
          table(
            ["CHANNEL", "BOARD", "VERSION", "CURRENT", "SIZE", "VERIFIED"],
            status.releases.map((r) => [
              r.channel,
              r.board,
              r.version,
              r.current ? "yes" : "",
              formatBytes(r.bytes),
              r.verifiedAt,
            ]),
          ),
        );
      });
    });

  assets
    .command("prune")
    .description("keep the newest flatcar.keep versions per channel and board, current, and any a profile pins")
    .action(async (_o, cmd: Command) => {
      await withMirror(cmd, async (mirror, store) => {
        const result = await mirror.prune(pinnedByProfiles(store));
        const lines = [
          ...result.removed.map((r) => `removed ${r.channel} ${r.board} ${r.version}`),
          ...result.strays.map((f) => `removed ${f} (left by a stopped sync)`),
        ];
        print(json(cmd), result, () => (lines.length === 0 ? "nothing to prune" : lines.join("\n")));
      });
    });

  const importCmd = assets
    .command("import <dir>")
    .description("take release files copied by hand (with their .sig files) and verify them like a download")
    .requiredOption("--channel <channel>", "channel the files belong to")
    .option("--arch <arch>", "amd64 or arm64", arch, "amd64")
    .option("--version <version>", "release number (default: from DIR/version.txt)");
  mirrorOptions(importCmd, false).action(
    async (dir: string, o: { channel: string; arch: "amd64" | "arm64"; version?: string }, cmd: Command) => {
      await withMirror(cmd, async (mirror) => {
        const result = await mirror.import(dir, {
          channel: o.channel,
          arch: o.arch,
          ...(o.version && { version: o.version }),
        });
        print(
          json(cmd),
          result,
          () =>
            `verified and imported Flatcar ${o.channel} ${boardOf(o.arch)} ${result.version}: ${result.files.join(", ")}`,
        );
      });
    },
  );
}
