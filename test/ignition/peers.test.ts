import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import AjvModule from "ajv";
import { afterAll, describe, expect, it } from "vitest";
import { renderIgnition, type Spec, translateButane, validateIgnition } from "../../src/ignition/index.ts";

/**
 * Every positive output is checked by the real references: the upstream JSON schema of its spec (Ajv) and, for
 * 3.3.0, Debian's ignition-validate (Ignition 2.14, the Go code Flatcar runs). Outputs at 3.4.0 are also served
 * down-converted to 3.3.0 when lossless, so ignition-validate sees them too. And for configs Ignition rejects,
 * ignition-validate and validateIgnition must agree.
 */
const Ajv = AjvModule as unknown as typeof AjvModule.default;
const corpus = fileURLToPath(new URL("./corpus/", import.meta.url));
const filesDir = `${corpus}files`;
const schemaDir = fileURLToPath(new URL("./schema", import.meta.url));
const tmp = mkdtempSync(`${tmpdir()}/kindling-ign-`);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function schemaValidator(spec: Spec) {
  const schema = JSON.parse(readFileSync(`${schemaDir}/v${spec.slice(0, 3).replace(".", "_")}.json`, "utf8"));
  // The upstream files declare draft-04; the keywords they use (type, properties, items, required, $ref, allOf)
  // mean the same in draft-07, which Ajv 8 implements, so the declaration is dropped rather than the check.
  delete schema.$schema;
  return new Ajv({ strict: false, allErrors: true }).compile(schema);
}
const schemas = {
  "3.3.0": schemaValidator("3.3.0"),
  "3.4.0": schemaValidator("3.4.0"),
  "3.5.0": schemaValidator("3.5.0"),
};

function ignitionValidate(config: unknown): { status: number | null; output: string } {
  const file = `${tmp}/c-${Math.random().toString(36).slice(2)}.ign`;
  writeFileSync(file, JSON.stringify(config));
  const r = spawnSync("ignition-validate", [file], { encoding: "utf8" });
  if (r.error) throw r.error; // missing tool: fail loudly
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const RELEASES: Record<Spec, string> = { "3.3.0": "3510.3.2", "3.4.0": "4081.2.0", "3.5.0": "4230.2.1" };

describe("positive corpus against the peers", () => {
  it("ignition-validate is the Debian Ignition 2.14 build", () => {
    expect(execFileSync("ignition-validate", ["--version"], { encoding: "utf8" })).toMatch(/2\.14/);
  });
  const names = readdirSync(corpus)
    .filter((f) => f.endsWith(".bu"))
    .map((f) => f.slice(0, -3))
    .sort();
  for (const name of names) {
    it(name, () => {
      const text = readFileSync(`${corpus}${name}.bu`, "utf8");
      const own = translateButane(text, { filesDir });
      const served: unknown[] = [own.config];
      for (const spec of ["3.3.0", "3.4.0", "3.5.0"] as const) {
        try {
          served.push(
            renderIgnition({ source: { butane: text }, values: {}, flatcarVersion: RELEASES[spec], filesDir }).config,
          );
        } catch (e) {
          // Only a 1.1.0 document using 3.4.0 fields may fail, and only when served to a 3.3.0-only release.
          expect(spec).toBe("3.3.0");
          expect(String(e)).toMatch(/needs Ignition spec 3\.4\.0/);
        }
      }
      for (const config of served) {
        const spec = (config as { ignition: { version: Spec } }).ignition.version;
        const check = schemas[spec];
        expect(check(config), JSON.stringify(check.errors)).toBe(true);
        expect(validateIgnition(config).filter((d) => d.severity === "error")).toEqual([]);
        if (spec === "3.3.0") {
          const r = ignitionValidate(config);
          expect(r.output).toBe("");
          expect(r.status).toBe(0);
        }
      }
    });
  }
});

/** 3.3.0 configs that Ignition refuses; validateIgnition must refuse each at the given path. */
const REJECTED: [string, object, string][] = [
  ["relative file path", { storage: { files: [{ path: "etc/x" }] } }, "$.storage.files[0].path"],
  ["unclean path", { storage: { files: [{ path: "/etc/../x" }] } }, "$.storage.files[0].path"],
  ["duplicate path", { storage: { files: [{ path: "/x" }], directories: [{ path: "/x" }] } }, "$.storage.files[0]"],
  ["unit without type", { systemd: { units: [{ name: "hello" }] } }, "$.systemd.units[0].name"],
  [
    "drop-in without .conf",
    { systemd: { units: [{ name: "a.service", dropins: [{ name: "x" }] }] } },
    "$.systemd.units[0].dropins[0].name",
  ],
  [
    "bad hash",
    { storage: { files: [{ path: "/x", contents: { source: "http://e.com/x", verification: { hash: "md5-00" } } }] } },
    "$.storage.files[0].contents.verification.hash",
  ],
  [
    "bad data URL",
    { storage: { files: [{ path: "/x", contents: { source: "data:text/plain;base64,***" } }] } },
    "$.storage.files[0].contents.source",
  ],
  [
    "raw non-ASCII in a data URL",
    { storage: { files: [{ path: "/x", contents: { source: "data:,h\u00e9" } }] } },
    "$.storage.files[0].contents.source",
  ],
  [
    "unsupported scheme",
    { storage: { files: [{ path: "/x", contents: { source: "ftp://e.com/x" } }] } },
    "$.storage.files[0].contents.source",
  ],
  [
    "compression value",
    { storage: { files: [{ path: "/x", contents: { source: "http://e.com/x", compression: "bzip2" } }] } },
    "$.storage.files[0].contents.compression",
  ],
  [
    "filesystem format",
    { storage: { filesystems: [{ device: "/dev/sdb", format: "ntfs" }] } },
    "$.storage.filesystems[0].format",
  ],
  ["relative device", { storage: { disks: [{ device: "sda" }] } }, "$.storage.disks[0].device"],
  [
    "duplicate partition number",
    { storage: { disks: [{ device: "/dev/sda", partitions: [{ number: 1 }, { number: 1 }] }] } },
    "$.storage.disks[0].partitions[1]",
  ],
  ["id and name", { storage: { files: [{ path: "/x", user: { id: 0, name: "root" } }] } }, "$.storage.files[0].user"],
  [
    "overwrite without source",
    { storage: { files: [{ path: "/x", overwrite: true }] } },
    "$.storage.files[0].overwrite",
  ],
  ["duplicate unit", { systemd: { units: [{ name: "a.service" }, { name: "a.service" }] } }, "$.systemd.units[1]"],
  [
    "kernel arg both ways",
    { kernelArguments: { shouldExist: ["quiet"], shouldNotExist: ["quiet"] } },
    "$.kernelArguments.shouldNotExist[0]",
  ],
  ["link without target", { storage: { links: [{ path: "/x" }] } }, "$.storage.links[0].target"],
  [
    "headers on data URL",
    { storage: { files: [{ path: "/x", contents: { source: "data:,x", httpHeaders: [{ name: "A", value: "b" }] } }] } },
    "$.storage.files[0].contents.httpHeaders",
  ],
  ["wrong type", { storage: { files: [{ path: "/x", mode: "0644" }] } }, "$.storage.files[0].mode"],
  ["duplicate user", { passwd: { users: [{ name: "a" }, { name: "a" }] } }, "$.passwd.users[1]"],
  [
    "duplicate SSH key",
    { passwd: { users: [{ name: "a", sshAuthorizedKeys: ["k", "k"] }] } },
    "$.passwd.users[0].sshAuthorizedKeys[1]",
  ],
  ["luks without device", { storage: { luks: [{ name: "d" }] } }, "$.storage.luks[0].device"],
  [
    "tang without thumbprint",
    { storage: { luks: [{ name: "d", device: "/dev/sdb", clevis: { tang: [{ url: "http://t" }] } }] } },
    "$.storage.luks[0].clevis.tang[0].thumbprint",
  ],
  ["illegal mode", { storage: { files: [{ path: "/x", mode: 70000 }] } }, "$.storage.files[0].mode"],
  [
    "partition label length",
    { storage: { disks: [{ device: "/dev/sda", partitions: [{ label: "x".repeat(37) }] }] } },
    "$.storage.disks[0].partitions[0].label",
  ],
  [
    "duplicate partition label",
    { storage: { disks: [{ device: "/dev/sda", partitions: [{ label: "a" }, { label: "a" }] }] } },
    "$.storage.disks[0].partitions[1]",
  ],
  [
    "partition GUID",
    { storage: { disks: [{ device: "/dev/sda", partitions: [{ number: 1, guid: "zzz" }] }] } },
    "$.storage.disks[0].partitions[0].guid",
  ],
  [
    "shouldExist false with options",
    { storage: { disks: [{ device: "/dev/sda", partitions: [{ number: 2, shouldExist: false, label: "x" }] }] } },
    "$.storage.disks[0].partitions[0]",
  ],
  [
    "spares on raid0",
    { storage: { raid: [{ name: "md0", level: "raid0", devices: ["/dev/sda"], spares: 1 }] } },
    "$.storage.raid[0].level",
  ],
  [
    "raid without devices",
    { storage: { raid: [{ name: "md0", level: "raid1", devices: [] }] } },
    "$.storage.raid[0].devices",
  ],
  [
    "filesystem path without format",
    { storage: { filesystems: [{ device: "/dev/sdb", path: "/x" }] } },
    "$.storage.filesystems[0].format",
  ],
  ["merge without source", { ignition: { version: "3.3.0", config: { merge: [{}] } } }, "$.ignition.config.merge[0]"],
  [
    "CA without source",
    { ignition: { version: "3.3.0", security: { tls: { certificateAuthorities: [{}] } } } },
    "$.ignition.security.tls.certificateAuthorities[0]",
  ],
  [
    "unit line without =",
    { systemd: { units: [{ name: "a.service", contents: "[Unit]\nDescription=x\njunk\n" }] } },
    "$.systemd.units[0].contents",
  ],
  [
    "unit section not closed",
    { systemd: { units: [{ name: "a.service", contents: "[Unit\nA=1\n" }] } },
    "$.systemd.units[0].contents",
  ],
  [
    "unit garbage after section",
    { systemd: { units: [{ name: "a.service", contents: "[Unit]]\nA=1\n" }] } },
    "$.systemd.units[0].contents",
  ],
  [
    "unit line too long",
    { systemd: { units: [{ name: "a.service", contents: `[Unit]\n# ${"x".repeat(2100)}\n` }] } },
    "$.systemd.units[0].contents",
  ],
  [
    "drop-in injected newline",
    {
      systemd: {
        units: [
          {
            name: "a.service",
            dropins: [{ name: "a.conf", contents: '[Service]\nEnvironment=HOST=node-1"\n{{ x }}\n' }],
          },
        ],
      },
    },
    "$.systemd.units[0].dropins[0].contents",
  ],
  ["proxy URL", { ignition: { version: "3.3.0", proxy: { httpProxy: "::bad" } } }, "$.ignition.proxy.httpProxy"],
  [
    "raid level",
    { storage: { raid: [{ name: "md0", level: "raid7", devices: ["/dev/sda"] }] } },
    "$.storage.raid[0].level",
  ],
  [
    "xfs label length",
    { storage: { filesystems: [{ device: "/dev/sdb", format: "xfs", label: "thirteenchars" }] } },
    "$.storage.filesystems[0].label",
  ],
];

describe("configs Ignition rejects: validateIgnition agrees with ignition-validate", () => {
  for (const [what, body, path] of REJECTED) {
    it(what, () => {
      const config = { ignition: { version: "3.3.0" }, ...body };
      const peer = ignitionValidate(config);
      expect(peer.status, peer.output).not.toBe(0);
      const errors = validateIgnition(config).filter((d) => d.severity === "error");
      expect(errors.map((d) => d.path)).toContain(path);
      // Every field Ignition names is named by Kindling too.
      for (const m of peer.output.matchAll(/^error at (\$[^,:\s]*)/gm))
        expect(errors.map((d) => d.path)).toContain((m[1] ?? "").replace(/\.(\d+)(?=\.|$)/g, "[$1]"));
    });
  }
});

/** 3.3.0 configs Ignition accepts: validateIgnition must not be stricter than the real thing. */
const ACCEPTED: [string, object][] = [
  ["swap with a path", { storage: { filesystems: [{ device: "/dev/sdb", format: "swap", path: "/x" }] } }],
  ["format none with a path", { storage: { filesystems: [{ device: "/dev/sdb", format: "none", path: "/x" }] } }],
  ["free-form filesystem uuid", { storage: { filesystems: [{ device: "/dev/sdb", format: "ext4", uuid: "abc" }] } }],
  ["hard link with a relative target", { storage: { links: [{ path: "/x", target: "rel", hard: true }] } }],
  ["empty append entry", { storage: { files: [{ path: "/x", append: [{}] }] } }],
  ["empty replace", { ignition: { version: "3.3.0", config: { replace: {} } } }],
  [
    "partition by label only",
    { storage: { disks: [{ device: "/dev/sda", partitions: [{ label: "data", number: 0 }] }] } },
  ],
  [
    "unit text before the first section, comments, continuations",
    {
      systemd: {
        units: [{ name: "a.service", contents: "junk\n[Unit]\n# c\n; c\n  A = 1 \\\n   more\n[ Service ]\nB=\n" }],
      },
    },
  ],
  [
    "data URL with media type",
    { storage: { files: [{ path: "/x", contents: { source: "data:text/plain;charset=utf-8;base64,aGk=" } }] } },
  ],
];

describe("configs Ignition accepts: validateIgnition accepts them too", () => {
  for (const [what, body] of ACCEPTED) {
    it(what, () => {
      const config = { ignition: { version: "3.3.0" }, ...body };
      const peer = ignitionValidate(config);
      expect(peer.status, peer.output).toBe(0);
      expect(validateIgnition(config).filter((d) => d.severity === "error")).toEqual([]);
    });
  }
});
