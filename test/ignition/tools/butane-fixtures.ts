/**
 * Regenerates the differential fixtures: runs the real Butane on every `*.bu` under test/ignition/corpus/ and
 * writes `<case>.butane.json` beside it with what Butane did, by default and with --strict:
 * `{ exit, config?, report }` (`config` is Butane's parsed `--pretty` output when it succeeded, `pretty` the exact
 * bytes, `report` its `--raw-errors` lines). The tests compare Kindling against these files, so Butane is only
 * needed to regenerate them:
 *
 *   test/ignition/tools/build-butane.sh /path/to/coreos/butane /tmp/butane v0.29.0   # see that script
 *   npx tsx test/ignition/tools/butane-fixtures.ts /tmp/butane
 *
 * Every case runs with `--files-dir test/ignition/corpus/files`, except cases whose name contains
 * `no-files-dir`.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const butane = process.argv[2] ?? "";
if (!butane) {
  process.stderr.write("usage: butane-fixtures.ts PATH-TO-BUTANE\n");
  process.exit(2);
}
const corpus = fileURLToPath(new URL("../corpus/", import.meta.url));
const filesDir = `${corpus}files`;
const version = spawnSync(butane, ["--version"], { encoding: "utf8" }).stdout.trim();

function cases(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = `${dir}${name}`;
      if (name === "files") return [];
      if (statSync(p).isDirectory()) return cases(`${p}/`);
      return name.endsWith(".bu") ? [p] : [];
    });
}

function run(file: string, strict: boolean) {
  const args = ["--pretty", "--raw-errors", ...(strict ? ["--strict"] : [])];
  if (!file.includes("no-files-dir")) args.push("--files-dir", filesDir);
  const r = spawnSync(butane, [...args, file], { encoding: "utf8" });
  if (r.error) throw r.error;
  const report = r.stderr.split("\n").filter((l) => l !== "");
  return r.status === 0
    ? { exit: 0, config: JSON.parse(r.stdout), pretty: r.stdout, report }
    : { exit: r.status, report };
}

let n = 0;
for (const file of cases(corpus)) {
  const out = { butane: version, default: run(file, false), strict: run(file, true) };
  writeFileSync(`${file.slice(0, -3)}.butane.json`, `${JSON.stringify(out, null, 2)}\n`);
  n++;
}
process.stdout.write(`${n} cases, ${version}\n`);
