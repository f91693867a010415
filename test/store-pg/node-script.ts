import { spawn } from "node:child_process";
import { join } from "node:path";

/**
 * Runs `test/store-pg/<script>` with tsx as its own process (a separate "node" with its own connections),
 * killed after 45 s; resolves with the JSON it printed, rejects with its stderr when it fails.
 */
export function runNodeScript<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(join("node_modules", ".bin", "tsx"), [join("test", "store-pg", script), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), 45_000);
    p.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out) as T);
      else reject(new Error(`${script} exited ${code}: ${err}`));
    });
  });
}
