/**
 * Driver for bench/http.sh: Kindling's HTTP beside nginx (Debian nginx-light, one worker, sendfile on, no
 * access log) on loopback, serving the same bytes, in the same run, each test alternating which goes first:
 *   - `/ipxe?mac=` of a registered machine (Kindling: lookup, render, history write) against the same script
 *     as a static file on nginx: asked again and again (Kindling answers from its cache of rendered scripts),
 *     and with a query that differs every time (every answer rendered), and `/boot.ipxe`; wrk, 2 threads,
 *     64 connections; plus a bare `node:http` server answering the same bytes, the floor for Node here;
 *   - one large file (default 300 MiB) with curl, one download at a time and 8 at once;
 *   - Kindling's start-up time to "HTTP listening" and idle RSS, compiled (dist/) and under tsx.
 * Prints medians over the rounds, ratios Kindling/nginx, p50/p99, server CPU per request, Kindling's peak RSS.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import {
  closeSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const SECONDS = Number(arg("seconds") ?? 8);
const ROUNDS = Number(arg("rounds") ?? 2);
const MIB = Number(arg("mib") ?? 300);
const PARALLEL = Number(arg("parallel") ?? 8);
const STARTS = Number(arg("starts") ?? 3);
const ONLY = (arg("only") ?? "ipxe,uncached,node,boot,seq,par,start").split(",");
const ROOT = resolve(import.meta.dirname, "..");
const TOKEN = "bench-token-0123456789abcdef";
const MAC = "52:54:00:be:00:01";
/** Whole run, whatever happens: everything started here is killed at this bound. */
const DEADLINE_MS = 15 * 60_000;

const work = mkdtempSync(join(tmpdir(), "kindling-http-bench-"));
const children: ChildProcess[] = [];
const deadline = setTimeout(() => {
  console.error(`bench: over ${DEADLINE_MS / 60_000} minutes, stopping`);
  cleanup();
  process.exit(2);
}, DEADLINE_MS);

function cleanup() {
  for (const c of children) c.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
}

const freePort = () =>
  new Promise<number>((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const rssMiB = (pid: number, field = "VmRSS") =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

async function waitHttp(url: string) {
  for (let i = 0; i < 200; i++) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never answered`);
}

/** Kindling as `npm start` runs it (bin/kindling.js → dist/), default log level, logging into a file. */
async function startKindling(dataDir: string, port: number): Promise<ChildProcess> {
  const log = openSync(join(work, "kindling.log"), "a");
  const k = spawn(
    process.execPath,
    [
      join(ROOT, "bin/kindling.js"),
      "serve",
      ...["--data-dir", dataDir, "--http-host", "127.0.0.1", "--http-port", String(port)],
      ...["--tftp-port", "0", "--dhcp-mode", "off", "--advertise", "127.0.0.1", "--api-token", TOKEN],
    ],
    { stdio: ["ignore", log, log] },
  );
  closeSync(log);
  children.push(k);
  await waitHttp(`http://127.0.0.1:${port}/healthz`);
  return k;
}

function startNginx(root: string, port: number): ChildProcess {
  const conf = join(work, "nginx.conf");
  writeFileSync(
    conf,
    `daemon off; master_process off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  types { text/plain ipxe; application/octet-stream bin; }
  client_body_temp_path ${work}/nginx-tmp; proxy_temp_path ${work}/nginx-tmp; fastcgi_temp_path ${work}/nginx-tmp;
  uwsgi_temp_path ${work}/nginx-tmp; scgi_temp_path ${work}/nginx-tmp;
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`,
  );
  const n = spawn("nginx", ["-p", work, "-c", conf], { stdio: "ignore" });
  children.push(n);
  return n;
}

interface Wrk {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  cpuUsPerReq: number;
}

const toMs = (v: string, unit: string) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[unit]!;

/** wrk's Lua hook for `uncached`: every request's query differs (`&n=<count>`), so no answer is served twice. */
const DISTINCT_QUERIES = `counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, wrk.path .. "&n=" .. counter)
end
`;

function wrk(url: string, pid: number, script?: string): Wrk {
  const cpu0 = cpuSeconds(pid);
  const lua = script ? ["-s", script] : [];
  const r = spawnSync("wrk", ["-t2", "-c64", `-d${SECONDS}s`, "--latency", "--timeout", "5s", ...lua, url], {
    encoding: "utf8",
    timeout: (SECONDS + 30) * 1000,
  });
  const cpu = cpuSeconds(pid) - cpu0;
  const out = r.stdout;
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
    return m ? toMs(m[1]!, m[2]!) : Number.NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: pct("50"),
    p99: pct("99"),
    errors,
    requests,
    cpuUsPerReq: requests ? (cpu * 1e6) / requests : Number.NaN,
  };
}

/**
 * `n` downloads of `url` at once: aggregate MB/s (10^6 bytes) over the wall time of the whole batch, and the
 * server's CPU seconds per GB sent.
 */
async function download(url: string, n: number, size: number, pid: number): Promise<{ mbs: number; cpuPerGB: number }> {
  const cpu0 = cpuSeconds(pid);
  const started = performance.now();
  const runs = Array.from(
    { length: n },
    () =>
      new Promise<string>((res) => {
        const c = spawn("curl", [
          "-s",
          "-o",
          "/dev/null",
          "--max-time",
          "120",
          "-w",
          "%{http_code} %{size_download}",
          url,
        ]);
        let out = "";
        c.stdout.on("data", (d) => (out += d));
        c.on("close", () => res(out));
      }),
  );
  const outs = await Promise.all(runs);
  const seconds = (performance.now() - started) / 1000;
  for (const o of outs) if (o !== `200 ${size}`) throw new Error(`download of ${url}: ${o}`);
  return { mbs: (n * size) / seconds / 1e6, cpuPerGB: (cpuSeconds(pid) - cpu0) / ((n * size) / 1e9) };
}

/** Milliseconds from spawn to the "HTTP listening" log line, and RSS after 2 s idle. */
async function startOnce(args: string[]): Promise<{ ms: number; rss: number }> {
  const dataDir = mkdtempSync(join(work, "start-"));
  const port = await freePort();
  const started = performance.now();
  const p = spawn(
    process.execPath,
    [...args, "serve", "--data-dir", dataDir, "--http-host", "127.0.0.1", "--http-port", String(port)],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, KINDLING_TFTP_PORT: "0", KINDLING_DHCP_MODE: "off", KINDLING_ADVERTISE: "127.0.0.1" },
    },
  );
  children.push(p);
  const ms = await new Promise<number>((res, rej) => {
    let buf = "";
    const t = setTimeout(() => rej(new Error("no 'HTTP listening' within 30 s")), 30_000);
    p.stdout!.on("data", (d) => {
      buf += d;
      if (buf.includes("HTTP listening")) {
        clearTimeout(t);
        res(performance.now() - started);
        buf = "";
      }
    });
  });
  await new Promise((r) => setTimeout(r, 2000));
  const rss = rssMiB(p.pid!);
  p.kill("SIGTERM");
  await new Promise((r) => p.once("exit", r));
  return { ms, rss };
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "-");
const pad = (s: string, n: number) => s.padEnd(n);
/** Column widths of the printed table. */
const W0 = 30;
const W = 64;

try {
  const build = spawnSync("npm", ["run", "build"], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);

  const dataDir = join(work, "data");
  const www = join(work, "www");
  mkdirSync(join(dataDir, "assets"), { recursive: true });
  mkdirSync(www);
  mkdirSync(join(work, "nginx-tmp"));
  // Pseudo-random bytes (not a sparse file: both servers read real pages from the page cache).
  const big = join(dataDir, "assets", "big.bin");
  const fd = openSync(big, "w");
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < MIB; i++) writeSync(fd, randomFillSync(chunk));
  closeSync(fd);
  linkSync(big, join(www, "big.bin"));
  const size = MIB << 20;

  const kPort = await freePort();
  const nPort = await freePort();
  const kindling = await startKindling(dataDir, kPort);
  const k = `http://127.0.0.1:${kPort}`;
  const n = `http://127.0.0.1:${nPort}`;
  const api = (path: string, body: unknown) =>
    fetch(`${k}/api/v1${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then(async (r) => {
      if (!r.ok) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
    });
  await api("/profiles", {
    name: "bench",
    boot: { kernel: "/assets/vmlinuz", initrd: ["/assets/initrd.img"], args: ["console=ttyS0", "host={{ hostname }}"] },
    ignition: { json: '{"ignition":{"version":"3.4.0"}}' },
  });
  await api("/machines", { mac: MAC, profile: "bench", hostname: "bench-1" });
  const ipxeUrl = `${k}/ipxe?mac=${MAC.replaceAll(":", "-")}&arch=x86_64&platform=pcbios`;
  const script = await (await fetch(ipxeUrl)).text();
  if (!script.includes("kernel ")) throw new Error(`/ipxe did not answer a boot script:\n${script}`);
  writeFileSync(join(www, "ipxe"), script);
  writeFileSync(join(www, "boot.ipxe"), await (await fetch(`${k}/boot.ipxe`)).text());
  const nginx = startNginx(www, nPort);
  await waitHttp(`${n}/ipxe`);
  const distinct = join(work, "distinct.lua");
  writeFileSync(distinct, DISTINCT_QUERIES);
  // The same bytes from `node:http` with nothing else: what any Node server pays for HTTP on this machine.
  const bPort = await freePort();
  const bare = spawn(
    process.execPath,
    [
      "-e",
      `const body = require("fs").readFileSync(${JSON.stringify(join(www, "ipxe"))}, "utf8");
require("http").createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "x-request-id": crypto.randomUUID(), "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}).listen(${bPort}, "127.0.0.1");`,
    ],
    { stdio: "ignore" },
  );
  children.push(bare);
  const b = `http://127.0.0.1:${bPort}`;
  await waitHttp(`${b}/ipxe`);

  let peakRss = rssMiB(kindling.pid!);
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMiB(kindling.pid!));
  }, 100);

  const rows: string[] = [];
  const wrkTest = (name: string, kUrl: string, nUrl: string, opts: { pid?: number; script?: string } = {}) => {
    const ks: Wrk[] = [];
    const ns: Wrk[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const pair = [
        () => ks.push(wrk(kUrl, opts.pid ?? kindling.pid!, opts.script)),
        () => ns.push(wrk(nUrl, nginx.pid!, opts.script)),
      ];
      if (r % 2) pair.reverse();
      for (const f of pair) f();
    }
    const m = (xs: Wrk[], f: (w: Wrk) => number) => median(xs.map(f));
    const cell = (xs: Wrk[]) =>
      `${fmt(m(xs, (w) => w.rps))} req/s, p50 ${fmt(
        m(xs, (w) => w.p50),
        1,
      )} ms, p99 ${fmt(
        m(xs, (w) => w.p99),
        1,
      )} ms, ${fmt(m(xs, (w) => w.cpuUsPerReq))} µs CPU/req`;
    rows.push(
      `${pad(name, W0)}${pad(cell(ks), W)}${pad(cell(ns), W)}${fmt(m(ks, (w) => w.rps) / m(ns, (w) => w.rps), 2)}`,
    );
    const errs = [...ks, ...ns].reduce((a, w) => a + w.errors, 0);
    if (errs) rows.push(`  (${errs} errors or non-2xx answers in these runs)`);
    return ks;
  };

  let ipxeAnswers = 0;
  if (ONLY.includes("ipxe")) {
    const ks = wrkTest("GET /ipxe?mac= (registered)", ipxeUrl, `${n}/ipxe`);
    ipxeAnswers += ks.reduce((a, w) => a + w.requests, 0);
  }
  if (ONLY.includes("uncached")) {
    const ks = wrkTest("  every query new (rendered)", ipxeUrl, `${n}/ipxe?mac=x`, { script: distinct });
    ipxeAnswers += ks.reduce((a, w) => a + w.requests, 0);
  }
  if (ONLY.includes("node")) wrkTest("  bare node:http, same bytes", `${b}/ipxe`, `${n}/ipxe`, { pid: bare.pid! });
  if (ONLY.includes("boot")) wrkTest("GET /boot.ipxe", `${k}/boot.ipxe`, `${n}/boot.ipxe`);

  const dlTest = (name: string, par: number) => async () => {
    const ks: { mbs: number; cpuPerGB: number }[] = [];
    const ns: { mbs: number; cpuPerGB: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const pair = [
        async () => ks.push(await download(`${k}/assets/big.bin`, par, size, kindling.pid!)),
        async () => ns.push(await download(`${n}/big.bin`, par, size, nginx.pid!)),
      ];
      if (r % 2) pair.reverse();
      for (const f of pair) await f();
    }
    const cell = (xs: { mbs: number; cpuPerGB: number }[]) =>
      `${fmt(median(xs.map((x) => x.mbs)))} MB/s, ${fmt(median(xs.map((x) => x.cpuPerGB)), 2)} CPU s/GB`;
    const ratio = median(ks.map((x) => x.mbs)) / median(ns.map((x) => x.mbs));
    rows.push(`${pad(name, W0)}${pad(cell(ks), W)}${pad(cell(ns), W)}${fmt(ratio, 2)}`);
  };
  if (ONLY.includes("seq")) await dlTest(`${MIB} MiB, sequential`, 1)();
  if (ONLY.includes("par")) await dlTest(`${MIB} MiB, ${PARALLEL} parallel`, PARALLEL)();
  clearInterval(sampler);
  peakRss = Math.max(peakRss, rssMiB(kindling.pid!, "VmHWM"));

  console.log(
    `loopback, wrk -t2 -c64 -d${SECONDS}s, curl; median of ${ROUNDS} rounds; nginx 1 worker, sendfile, no access log`,
  );
  console.log(`${pad("work", W0)}${pad("Kindling", W)}${pad("nginx", W)}ratio`);
  for (const r of rows) console.log(r);
  console.log(
    `Kindling peak RSS under this load: ${fmt(peakRss)} MiB (nginx: ${fmt(rssMiB(nginx.pid!, "VmHWM"))} MiB)`,
  );
  kindling.kill("SIGTERM");
  nginx.kill("SIGTERM");
  bare.kill("SIGTERM");
  if (ONLY.includes("ipxe") || ONLY.includes("uncached")) {
    // The coalescing log writes a machine's first request as a row and its repeats as counts, the last of
    // them at shutdown: once Kindling has stopped, every answered request is in the history.
    await new Promise((r) => kindling.once("exit", r));
    const db = new Database(join(dataDir, "kindling.db"), { readonly: true });
    const { rows, requests } = db
      .prepare(
        "SELECT count(*) rows, sum(coalesce(json_extract(detail, '$.repeated'), 1)) requests FROM events WHERE mac = ? AND kind = 'ipxe.request'",
      )
      .get(MAC) as { rows: number; requests: number };
    db.close();
    // wrk does not count the answers still in flight when its time is up, nor the one fetch made to set up.
    console.log(
      `/ipxe history: ${requests} requests recorded in ${rows} rows for ${ipxeAnswers} answers wrk counted (+1 set-up fetch, + answers in flight when wrk stopped)`,
    );
  }

  if (ONLY.includes("start")) {
    const dist: { ms: number; rss: number }[] = [];
    const tsx: { ms: number; rss: number }[] = [];
    for (let i = 0; i < STARTS; i++) {
      dist.push(await startOnce([join(ROOT, "bin/kindling.js")]));
      tsx.push(await startOnce(["--import", "tsx", join(ROOT, "src/cli.ts")]));
    }
    const line = (name: string, xs: { ms: number; rss: number }[]) =>
      `${pad(name, W0)}${fmt(median(xs.map((x) => x.ms)))} ms to "HTTP listening", idle RSS ${fmt(median(xs.map((x) => x.rss)))} MiB`;
    console.log(`start-up, median of ${STARTS}:`);
    console.log(line("compiled (dist/)", dist));
    console.log(line("tsx (sources)", tsx));
  }
} finally {
  clearTimeout(deadline);
  cleanup();
}
