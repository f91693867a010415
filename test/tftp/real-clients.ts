import { rm } from "node:fs/promises";
import { join } from "node:path";
import { run, sha256 } from "./helpers.ts";

/** The real TFTP clients the adversarial tests and the bench fetch with, each bounded by `timeoutS`. */
export const CLIENTS = {
  curl: (port: number, file: string, out: string, timeoutS: number) =>
    run(
      "curl",
      ["-sS", "--max-time", String(timeoutS), "-o", out, `tftp://127.0.0.1:${port}/${file}`],
      timeoutS * 1000,
    ),
  atftp: (port: number, file: string, out: string, timeoutS: number) =>
    run(
      "atftp",
      ["--option", "blksize 1468", "--option", "tsize 0", "-g", "-r", file, "-l", out, "127.0.0.1", String(port)],
      timeoutS * 1000,
    ),
  "tftp-hpa": (port: number, file: string, out: string, timeoutS: number) =>
    run("tftp", ["-m", "binary", "127.0.0.1", String(port), "-c", "get", file, out], timeoutS * 1000),
} as const;
export type ClientName = keyof typeof CLIENTS;

/**
 * Fetches `file` from `root`'s server with `client`; returns the wall-clock ms, or throws if the client
 * failed, ran past `timeoutS` or got different bytes.
 */
export async function fetchExact(
  client: ClientName,
  port: number,
  root: string,
  file: string,
  out: string,
  timeoutS = 10,
): Promise<number> {
  // A file left from an earlier fetch must not pass for this one.
  await rm(out, { force: true });
  const start = performance.now();
  await CLIENTS[client](port, file, out, timeoutS);
  const ms = performance.now() - start;
  const [got, want] = await Promise.all([sha256(out), sha256(join(root, file))]);
  if (got !== want) throw new Error(`${client}: ${file} arrived with different bytes`);
  return ms;
}
