/** A real `kindling serve` child process (optionally inside a network namespace) for the data-dir and shutdown tests. */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { databaseFor } from "../helpers/database.ts";

export const BIN = resolve(import.meta.dirname, "../../bin/kindling.js");

export interface ServeProcess {
  child: ChildProcess;
  output(): string;
  /** Waits, at most `ms`, for `text` in the output; throws with the output so far otherwise (or on exit). */
  waitFor(text: string, ms?: number): Promise<void>;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
}

/** Starts `node bin/kindling.js <args>`, behind `prefix` (e.g. `ip netns exec NAME`) when given. */
export function startServe(args: string[], opts: { prefix?: string[]; env?: Record<string, string> } = {}) {
  const [cmd, ...rest] = [...(opts.prefix ?? []), process.execPath, BIN, ...args];
  const child = spawn(cmd!, rest, { env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const proc: ServeProcess = {
    child,
    output: () => out,
    exited,
    async waitFor(text, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (!out.includes(text)) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`kindling exited (${child.exitCode ?? child.signalCode}) before "${text}":\n${out}`);
        if (Date.now() > deadline) throw new Error(`no "${text}" within ${ms} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  return proc;
}

/**
 * Loopback-only flags for a serve with HTTP on `httpPort` and everything else off unless `extra` enables it;
 * its store is the suite's engine (test/helpers/database.ts).
 */
export function loopbackFlags(dataDir: string, httpPort: number, extra: string[] = []): string[] {
  const database = databaseFor(dataDir);
  return [
    "--data-dir",
    dataDir,
    "serve",
    "--advertise",
    "127.0.0.1",
    "--http-host",
    "127.0.0.1",
    "--http-port",
    String(httpPort),
    "--tftp-port",
    "0",
    "--dhcp-mode",
    "off",
    "--log-level",
    "info",
    // A closed loopback port: nothing here ever reaches the internet.
    "--flatcar-origin",
    "http://127.0.0.1:9/{channel}/{board}",
    ...(database ? ["--database", database] : []),
    ...extra,
  ];
}
