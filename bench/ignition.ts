/**
 * Ignition validation speed, side by side with Ignition's own validator in the same run: the same generated
 * 3.3.0 config (N files, units, users) checked by `validateIgnition` in-process and by Debian's
 * `ignition-validate` (Go, Ignition 2.14; one process per config, as it is used). Also prints what a render
 * (Butane translate + templating + validation) costs per machine.
 *   npx tsx bench/ignition.ts [--files=2000] [--runs=5]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { renderIgnition, translateButane, validateIgnition } from "../src/ignition/index.ts";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const FILES = Math.min(Number(arg("files") ?? 2000), 20_000);
const RUNS = Math.min(Number(arg("runs") ?? 5), 50);

let butane = "variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n";
for (let i = 0; i < FILES; i++)
  butane += `    - path: /etc/kindling/f${i}.conf\n      mode: 0644\n      contents:\n        inline: "host={{ hostname }} n=${i}\\n"\n`;
butane += "systemd:\n  units:\n";
for (let i = 0; i < FILES / 10; i++)
  butane += `    - name: s${i}.service\n      enabled: true\n      contents: "[Service]\\nExecStart=/usr/bin/true ${i}\\n[Install]\\nWantedBy=multi-user.target\\n"\n`;
butane += "passwd:\n  users:\n";
for (let i = 0; i < FILES / 40; i++)
  butane += `    - name: u${i}\n      uid: ${2000 + i}\n      ssh_authorized_keys: [ssh-ed25519 AAAA${i}]\n`;

const values = { hostname: "node-1" };
const config = renderIgnition({ source: { butane }, values }).config;
const dir = mkdtempSync(`${tmpdir()}/kindling-bench-ign-`);
const file = `${dir}/config.ign`;
writeFileSync(file, JSON.stringify(config));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
function time(fn: () => void): number {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return median(samples);
}

try {
  const ours = time(() => {
    const errors = validateIgnition(JSON.parse(JSON.stringify(config))).filter((d) => d.severity === "error");
    if (errors.length) throw new Error(`validateIgnition rejected the bench config: ${errors[0]?.message}`);
  });
  const peer = time(() => {
    const r = spawnSync("ignition-validate", [file], { encoding: "utf8" });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`ignition-validate rejected the bench config: ${r.stdout}${r.stderr}`);
  });
  const translate = time(() => translateButane(butane));
  const render = time(() => renderIgnition({ source: { butane }, values, flatcarVersion: "4230.2.1" }));
  const size = JSON.stringify(config).length;
  console.log(
    `config: ${FILES} files, ${Math.floor(FILES / 10)} units, ${Math.floor(FILES / 40)} users, ${(size / 1024).toFixed(0)} KiB JSON; median of ${RUNS} runs`,
  );
  console.log(`validate  kindling validateIgnition  ${ours.toFixed(1).padStart(8)} ms`);
  console.log(
    `validate  ignition-validate (2.14)   ${peer.toFixed(1).padStart(8)} ms   ratio peer/kindling = ${(peer / ours).toFixed(2)}`,
  );
  console.log(`translate butane → ignition          ${translate.toFixed(1).padStart(8)} ms`);
  console.log(`render    template + target + check  ${render.toFixed(1).padStart(8)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
