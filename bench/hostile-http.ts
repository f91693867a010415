/**
 * The HTTP attacks of docs/hostile.md against one or more builds of Kindling, side by side, on loopback:
 *
 *   npx tsx bench/hostile-http.ts                                   # this checkout
 *   npx tsx bench/hostile-http.ts /path/to/other/bin/kindling.js bin/kindling.js
 *
 * Each build runs as a real `kindling serve` with its default settings. Every attack is bounded in count.
 * Rows are keyed by label: keep labels unique.
 */
import { Agent, request } from "node:http";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { get, pool, type Served, serve } from "../test/hostile/http-server.ts";

const MiB = 1 << 20;
const macOf = (i: number) =>
  `52:54:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
const rows = (s: Served, sql: string) => {
  const db = new Database(join(s.dataDir, "kindling.db"), { readonly: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

/** One POST announcing `total` bytes; sending stops when the answer comes. */
function bigPost(url: string, total: number): Promise<{ status: number | undefined; sent: number }> {
  return new Promise((done) => {
    let sent = 0;
    let status: number | undefined;
    let finished = false;
    const finish = () => {
      if (!finished) (finished = true), done({ status, sent });
    };
    const req = request(
      url,
      {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": String(total) },
      },
      (res) => {
        status = res.statusCode;
        res.resume();
        res.on("end", finish);
      },
    );
    req.on("error", finish);
    const chunk = Buffer.alloc(MiB, 0x61);
    const pump = () => {
      while (!finished && status === undefined && sent < total) {
        sent += MiB;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      if (sent >= total) req.end();
    };
    pump();
    setTimeout(() => (req.destroy(), finish()), 120_000).unref();
  });
}

async function measure(bin: string): Promise<Record<string, string | number>> {
  const out: Record<string, string | number> = {};
  {
    const s = await serve({}, { bin });
    const before = s.rss();
    const r = await bigPost(`${s.url}/ui/login`, 256 * MiB);
    out["256 MiB POST /ui/login: status"] = r.status ?? "none";
    out["  MiB read before the answer"] = r.sent / MiB;
    out["  RSS growth, MiB"] = Math.round((s.rss() - before) / MiB);
    await s.stop();
  }
  {
    const s = await serve({}, { bin });
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const lines = s.log().length;
    await pool(10_000, 16, (i) => get(`${s.url}/ignition?mac=52:54:00:aa:00:01&exp=9999999999&sig=${i}`, { agent }));
    agent.destroy();
    out["10,000 refused /ignition: event rows"] = rows(s, "SELECT count(*) n FROM events");
    out["  log lines of refusals"] = s.log().length - lines;
    await s.stop();
  }
  {
    const s = await serve({}, { bin });
    await s.api("/machines", { method: "POST", json: { mac: "52:54:00:ff:00:01", profile: "local-disk" } });
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    let flooding = true;
    const probes: number[] = [];
    const prober = (async () => {
      const one = new Agent({ keepAlive: true, maxSockets: 1 });
      while (flooding) {
        const t = performance.now();
        await get(`${s.url}/ipxe?mac=52:54:00:ff:00:01`, { agent: one, localAddress: "127.0.0.2" });
        probes.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 100));
      }
      one.destroy();
    })();
    const lines = s.log().length;
    await pool(30_000, 32, (i) => get(`${s.url}/ipxe?mac=${macOf(i)}`, { agent }));
    flooding = false;
    await prober;
    agent.destroy();
    probes.sort((a, b) => a - b);
    const t = performance.now();
    const list = await (await s.api("/machines")).text();
    out["30,000 new MACs on /ipxe: machines"] = rows(s, "SELECT count(*) n FROM machines");
    out["  event rows"] = rows(s, "SELECT count(*) n FROM events");
    out["  log lines of the flood"] = s.log().length - lines;
    out["  registered machine's /ipxe during it, p50 ms"] = Math.round(probes[probes.length >> 1]!);
    out["  registered machine's /ipxe during it, max ms"] = Math.round(probes.at(-1)!);
    out["  GET /api/v1/machines after it, KiB"] = Math.round(list.length / 1024);
    out["  GET /api/v1/machines after it, ms"] = Math.round(performance.now() - t);
    await s.stop();
  }
  return out;
}

const bins = process.argv.slice(2).map((b) => resolve(b));
if (bins.length === 0) bins.push(resolve(import.meta.dirname, "..", "bin", "kindling.js"));
const results = [];
for (const bin of bins) results.push(await measure(bin));
const keys = Object.keys(results[0]!);
const width = Math.max(...keys.map((k) => k.length));
console.log(["".padEnd(width), ...bins.map((_, i) => `build ${i + 1}`.padStart(12))].join(" "));
for (const k of keys) console.log([k.padEnd(width), ...results.map((r) => String(r[k]).padStart(12))].join(" "));
bins.forEach((b, i) => console.log(`build ${i + 1}: ${b}`));
