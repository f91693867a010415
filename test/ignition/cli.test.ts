import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

/** The `butane` and `validate` commands as an operator runs them: a real process, stdin/stdout, exit codes. */
const root = fileURLToPath(new URL("../../", import.meta.url));
const corpus = `${root}test/ignition/corpus/`;
const tmp = mkdtempSync(`${tmpdir()}/kindling-cli-`);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function kindling(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ["bin/kindling.js", ...args], {
    cwd: root,
    input,
    encoding: "utf8",
    timeout: 30_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("kindling butane", () => {
  it("translates stdin to compact JSON on stdout", () => {
    const r = kindling(
      ["butane"],
      "variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/motd\n      mode: 0644\n      contents:\n        inline: hi\n",
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      '{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/motd","contents":{"compression":"","source":"data:,hi"},"mode":420}]}}\n',
    );
  });

  it("reads FILE with --files-dir; --pretty writes exactly what butane --pretty writes; Ignition accepts it", () => {
    for (const name of ["systemd", "passwd", "edge/html-chars", "edge/mount-unit-order"]) {
      const r = kindling(["butane", "--pretty", "--files-dir", `${corpus}files`, `${corpus}${name}.bu`]);
      expect(r.status).toBe(0);
      const butane = JSON.parse(readFileSync(`${corpus}${name}.butane.json`, "utf8")) as {
        default: { pretty: string };
      };
      expect(r.stdout).toBe(butane.default.pretty);
    }
    const v33 = kindling(["butane", `${corpus}systemd.bu`]);
    writeFileSync(`${tmp}/systemd.ign`, v33.stdout);
    const peer = spawnSync("ignition-validate", [`${tmp}/systemd.ign`], { encoding: "utf8" });
    expect(peer.status, peer.stderr).toBe(0);
  });

  it("exits 1 with line:column on errors", () => {
    const r = kindling(["butane"], "variant: flatcar\nversion: 1.2.0-experimental\n");
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(
      "<stdin>: error at 2:10 $.version: flatcar 1.2.0-experimental targets Ignition 3.7.0-experimental",
    );
  });

  it("warns about unknown keys, and fails on them with --strict", () => {
    const bu = "variant: flatcar\nversion: 1.0.0\nsystemd:\n  units:\n    - name: a.service\n      enable: true\n";
    const lax = kindling(["butane"], bu);
    expect(lax.status).toBe(0);
    expect(lax.stderr).toContain('<stdin>: warning at 6:7 $.systemd.units[0]: unknown key "enable"');
    const strict = kindling(["butane", "--strict"], bu);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toContain('error at 6:7 $.systemd.units[0]: unknown key "enable"');
  });

  it("renders a profile template with --values at a Flatcar release's spec", () => {
    writeFileSync(`${tmp}/values.yaml`, "hostname: node-7\n");
    const bu =
      'variant: flatcar\nversion: 1.0.0\nsystemd:\n  units:\n    - name: a.service\n      contents: "H={{ hostname }}"\n';
    const r = kindling(["butane", "--values", `${tmp}/values.yaml`, "--flatcar-version", "4081.2.0"], bu);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      ignition: { version: "3.4.0" },
      systemd: { units: [{ name: "a.service", contents: "H=node-7" }] },
    });
  });

  it("a missing input file is a one-line error and exit 1", () => {
    const r = kindling(["butane", `${tmp}/nope.bu`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`${tmp}/nope.bu: cannot read: ENOENT\n`);
  });
});

describe("kindling validate", () => {
  it("accepts a valid config and names the spec", () => {
    writeFileSync(
      `${tmp}/ok.ign`,
      JSON.stringify({
        ignition: { version: "3.5.0" },
        storage: { luks: [{ name: "d", device: "/dev/sdb", cex: { enabled: true } }] },
      }),
    );
    const r = kindling(["validate", `${tmp}/ok.ign`]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${tmp}/ok.ign: valid Ignition 3.5.0\n`);
  });

  it("rejects a bad config with the field's path and position", () => {
    writeFileSync(
      `${tmp}/bad.ign`,
      '{\n  "ignition": {"version": "3.4.0"},\n  "storage": {"files": [{"path": "etc/x"}]}\n}\n',
    );
    const r = kindling(["validate", `${tmp}/bad.ign`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${tmp}/bad.ign: error at 3:34 $.storage.files[0].path: path not absolute: "etc/x"`);
  });

  it("validates Butane files too", () => {
    expect(kindling(["validate", `${corpus}passwd.bu`]).stdout).toContain("valid Ignition 3.3.0");
    expect(kindling(["validate", `${corpus}bad/unit-suffix.bu`]).status).toBe(1);
  });

  it("validates profile files: the schema, then the Ignition template with stand-in machine values", () => {
    const builtin = `${root}profiles/flatcar-install.yaml`;
    const ok = kindling(["validate", builtin]);
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toBe(`${builtin}: valid profile flatcar-install\n`);

    const typo = `${tmp}/typo.yaml`;
    writeFileSync(
      typo,
      "flatcar: {channel: stable}\nignition:\n  butane: |\n    variant: flatcar\n    version: 1.0.0\n    storage: {filez: []}\n",
    );
    const bad = kindling(["validate", typo]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`${typo}: ignition.butane:`);
    expect(bad.stderr).toContain('unknown key "filez"');

    const schema = `${tmp}/schema.yaml`;
    writeFileSync(schema, "flatcar: {channel: sometimes}\n");
    const wrong = kindling(["validate", schema]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain(`${schema}: flatcar.channel:`);
  });
});
