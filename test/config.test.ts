import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { ConfigError } from "../src/model/errors.ts";
import { tempDir } from "./helpers/kindling.ts";

describe("config", () => {
  it("defaults run on one machine with nothing else", () => {
    const c = loadConfig({ env: {} });
    expect(c.http.port).toBe(8080);
    expect(c.tftp.port).toBe(69);
    expect(c.dhcp.mode).toBe("proxy");
    expect(c.dataDir.endsWith("/data")).toBe(true);
    expect(c.advertise).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it("database: SQLite when unset, a postgres:// URL with its pool under postgres:, anything else named", () => {
    expect(loadConfig({ env: {} }).database).toBeUndefined();
    const url = "postgres://kindling:secret@db.example:5432/kindling";
    const c = loadConfig({ env: { KINDLING_DATABASE: url }, overrides: { postgres: { poolMax: 4 } } });
    expect(c.database).toBe(url);
    expect(c.postgres).toMatchObject({ poolMax: 4, maxWaiting: 1000, statementTimeoutMs: 5000 });
    expect(loadConfig({ env: {}, flags: { database: "postgresql://k@/k?host=/run/postgresql" } }).database).toBe(
      "postgresql://k@/k?host=/run/postgresql",
    );
    expect(() => loadConfig({ env: { KINDLING_DATABASE: "mysql://x/y" } })).toThrow(
      /database: must be a postgres:\/\/ or postgresql:\/\/ URL .*env KINDLING_DATABASE/,
    );
    expect(() => loadConfig({ env: {}, overrides: { postgres: { poolMax: 0 } } })).toThrow(/postgres\.poolMax/);
    expect(() => loadConfig({ env: {}, overrides: { postgres: { url: url } } })).toThrow(/postgres/);
  });

  it("layers: file < env < flags", () => {
    const d = tempDir();
    const file = join(d, "k.yaml");
    writeFileSync(file, "http:\n  port: 1000\n  host: 127.0.0.1\ndhcp:\n  mode: full\n");
    const c = loadConfig({ file, env: { KINDLING_HTTP_PORT: "2000" }, flags: { "http-port": "3000" } });
    expect(c.http).toMatchObject({ port: 3000, host: "127.0.0.1" });
    expect(c.dhcp.mode).toBe("full");
    expect(loadConfig({ file, env: { KINDLING_HTTP_PORT: "2000" } }).http.port).toBe(2000);
    rmSync(d, { recursive: true });
  });

  it.each([
    [{ env: { KINDLING_HTTP_PORT: "70000" } }, /http\.port.*env KINDLING_HTTP_PORT/],
    [{ env: {}, flags: { "dhcp-mode": "maybe" } }, /dhcp\.mode.*flag --dhcp-mode/],
    [{ env: { KINDLING_ADVERTISE: "not-an-ip" } }, /advertise/],
    [{ env: { KINDLING_API_TOKEN: "short" } }, /apiToken.*16/],
    [{ env: {}, overrides: { htpp: { port: 1 } } }, /htpp|Unrecognized/],
    [{ env: {}, overrides: { tftp: { maxBlksize: 7 } } }, /tftp\.maxBlksize/],
    [{ env: {}, overrides: { boot: { requireLeasedIp: true } } }, /boot\.requireLeasedIp: needs dhcp\.mode full/],
  ])("a bad value stops start-up naming the key: %j", (sources, message) => {
    expect(() => loadConfig(sources)).toThrow(ConfigError);
    expect(() => loadConfig(sources)).toThrow(message);
  });

  it("a broken YAML file is named", () => {
    const d = tempDir();
    const file = join(d, "bad.yaml");
    writeFileSync(file, "http: [unclosed\n");
    expect(() => loadConfig({ file, env: {} })).toThrow(file);
    expect(() => loadConfig({ file: join(d, "missing.yaml"), env: {} })).toThrow(/missing\.yaml/);
    rmSync(d, { recursive: true });
  });
});
