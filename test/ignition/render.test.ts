import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { decodeContents } from "../../src/ignition/dataurl.ts";
import {
  checkProfileIgnition,
  IgnitionError,
  renderIgnition,
  type TemplateValues,
  translateButane,
} from "../../src/ignition/index.ts";

const machine: TemplateValues = {
  mac: "52:54:00:12:34:56",
  hostname: "node-1",
  uuid: "4c4c4544-0042-3510-8052-b4c04f4e5331",
  serial: "SN123",
  arch: "amd64",
  ip: "10.0.0.21",
  labels: { rack: "r1", "topology.kubernetes.io/zone": "z1" },
  metadata: { uid: 1500, pool: "blue", nested: { a: 1 }, empty: null },
  vars: { channel: "stable" },
  server: "http://10.0.0.1:8080",
  flatcar: { channel: "stable", version: "4230.2.1" },
  urls: { report: "http://10.0.0.1:8080/events?token=abc&mac=52-54-00-12-34-56" },
};

function failure(fn: () => unknown): IgnitionError {
  try {
    fn();
  } catch (e) {
    if (e instanceof IgnitionError) return e;
    throw e;
  }
  throw new Error("expected an IgnitionError");
}

type Cfg = {
  ignition: { version: string };
  passwd?: { users?: { name: string; uid?: number; gecos?: string }[] };
  storage?: { files?: { path: string; contents?: { source: string; compression?: string } }[] };
  systemd?: { units?: { name: string; contents?: string }[] };
};
const fileText = (cfg: unknown, i = 0) => {
  const f = (cfg as Cfg).storage?.files?.[i];
  return decodeContents(f?.contents?.source ?? "", f?.contents?.compression).toString("utf8");
};

const TEMPLATE = `variant: flatcar
version: 1.0.0
storage:
  files:
    - path: /etc/hostname
      mode: 0644
      contents:
        inline: "{{ hostname }}"
    - path: /etc/kindling/{{ mac }}.env
      contents:
        inline: |
          SERVER={{ server }}
          ZONE={{ labels["topology.kubernetes.io/zone"] }}
          CHANNEL={{ flatcar.channel }} VERSION={{ flatcar.version }} VAR={{ vars.channel }}
          UUID={{ uuid }} SERIAL={{ serial }} ARCH={{ arch }} IP={{ ip }} POOL={{ metadata.pool }}
          FORMAT={{ "{{.Names}}" }}
systemd:
  units:
    - name: report.service
      enabled: true
      contents: |
        [Service]
        ExecStart=/usr/bin/curl -fsS -X POST '{{ urls.report }}'
        [Install]
        WantedBy=multi-user.target
passwd:
  users:
    - name: svc
      uid: "{{ metadata.uid }}"
`;

describe("templating", () => {
  it("fills per-machine values into string values", () => {
    const { config, spec, warnings } = renderIgnition({ source: { butane: TEMPLATE }, values: machine });
    expect(spec).toBe("3.3.0");
    expect(warnings).toEqual([]);
    expect(fileText(config, 0)).toBe("node-1");
    const c = config as Cfg;
    expect(c.storage?.files?.[1]?.path).toBe("/etc/kindling/52:54:00:12:34:56.env");
    expect(fileText(config, 1)).toBe(
      "SERVER=http://10.0.0.1:8080\nZONE=z1\nCHANNEL=stable VERSION=4230.2.1 VAR=stable\n" +
        "UUID=4c4c4544-0042-3510-8052-b4c04f4e5331 SERIAL=SN123 ARCH=amd64 IP=10.0.0.21 POOL=blue\nFORMAT={{.Names}}\n",
    );
    expect(c.systemd?.units?.[0]?.contents).toContain(
      "curl -fsS -X POST 'http://10.0.0.1:8080/events?token=abc&mac=52-54-00-12-34-56'",
    );
    expect(c.passwd?.users?.[0]?.uid).toBe(1500);
  });

  const INJECTIONS = [
    "quote \" and ' and \\",
    "two\nlines\n  indented: key",
    "{{ hostname }}",
    "}} {{",
    "*alias &anchor",
    "!!binary aGk=",
    "!tag value",
    "- list: [item]",
    '","mode":511,"overwrite":true,"x":"',
    "%00 %ZZ data:,x",
    "ünïcödé ✓ 🔥",
    "${HOME} `id` $(id)",
  ];
  const NOTE =
    'variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/note\n      contents:\n        inline: "{{ metadata.note }}"\n';
  for (const evil of INJECTIONS) {
    it(`keeps a hostile value literal: ${JSON.stringify(evil)}`, () => {
      const values = { ...machine, metadata: { note: evil } };
      const { config } = renderIgnition({ source: { butane: NOTE }, values });
      const c = config as Cfg;
      expect(fileText(config, 0)).toBe(evil);
      expect(c).toEqual({
        ignition: { version: "3.3.0" },
        storage: { files: [{ path: "/etc/note", contents: c.storage?.files?.[0]?.contents }] },
      });
      // The same through a raw JSON profile.
      const json = JSON.stringify({
        ignition: { version: "3.4.0" },
        storage: { files: [{ path: "/etc/note", contents: { source: "data:,x" } }] },
        passwd: { users: [{ name: "u", gecos: "{{ metadata.note }}" }] },
      });
      const viaJson = renderIgnition({ source: { json }, values }).config as Cfg;
      expect(viaJson.passwd?.users?.[0]).toEqual({ name: "u", gecos: evil });
    });
  }

  it("machine-reported values with control characters are refused, others stay literal", () => {
    for (const field of ["hostname", "serial", "uuid", "mac"]) {
      const json = JSON.stringify({
        ignition: { version: "3.3.0" },
        passwd: { users: [{ name: "u", gecos: `{{ ${field} }}` }] },
      });
      const e = failure(() =>
        renderIgnition({ source: { json }, values: { ...machine, [field]: "x\nExecStartPre=/bin/evil" } }),
      );
      expect(e.message).toContain(`template value "${field}" contains control characters`);
      const odd = 'quote" {{ x }} *a &b !!str';
      expect(
        (renderIgnition({ source: { json }, values: { ...machine, [field]: odd } }).config as Cfg).passwd?.users?.[0],
      ).toEqual({ name: "u", gecos: odd });
    }
  });

  it("a missing value is an error naming it, with its position", () => {
    const bu =
      "variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/rack\n      contents:\n        inline: rack={{ metadata.rack }}\n";
    const e = failure(() => renderIgnition({ source: { butane: bu }, values: machine }));
    expect(e.first).toMatchObject({ line: 7, column: 17, path: "$.storage.files[0].contents.inline" });
    expect(e.message).toContain('template value "metadata.rack" is not set for this machine');
  });

  it("null values, maps and prototype names are not values", () => {
    const one = (ref: string) =>
      failure(() =>
        renderIgnition({
          source: {
            json: JSON.stringify({
              ignition: { version: "3.3.0" },
              systemd: { units: [{ name: "a.service", contents: `{{ ${ref} }}` }] },
            }),
          },
          values: machine,
        }),
      );
    expect(one("metadata.empty").message).toContain('"metadata.empty" is not set');
    expect(one("metadata.nested").message).toContain('"metadata.nested" is a list or map');
    expect(one("constructor").message).toContain('"constructor" is not set');
    expect(one("metadata.__proto__").message).toContain('"metadata.__proto__" is not set');
    expect(one("hostname.length").message).toContain('"hostname.length" is not set');
  });

  it("malformed template syntax is an error with the position", () => {
    for (const bad of ["{{ hostname", "{{ }}", "{{ 1abc }}", "{{ a. }}", '{{ labels["x }}', "{{ a b }}"]) {
      const bu = `variant: flatcar\nversion: 1.0.0\nsystemd:\n  units:\n    - name: a.service\n      contents: ${JSON.stringify(bad)}\n`;
      const e = failure(() => renderIgnition({ source: { butane: bu }, values: machine }));
      expect(e.first).toMatchObject({ line: 6, path: "$.systemd.units[0].contents" });
      expect(e.message).toMatch(/template at offset \d+/);
    }
  });

  it("an integer field fed a non-integer value is an error", () => {
    const bu = 'variant: flatcar\nversion: 1.0.0\npasswd:\n  users:\n    - name: a\n      uid: "{{ metadata.pool }}"\n';
    expect(failure(() => renderIgnition({ source: { butane: bu }, values: machine })).message).toContain(
      'template gave "blue", expected an integer',
    );
  });

  it("translateButane leaves templates alone", () => {
    const bu =
      'variant: flatcar\nversion: 1.0.0\nsystemd:\n  units:\n    - name: a.service\n      contents: "{{ hostname }}"\n';
    expect((translateButane(bu).config as Cfg).systemd?.units?.[0]?.contents).toBe("{{ hostname }}");
  });
});

describe("spec targeting", () => {
  const v11 = (extra: string) =>
    `variant: flatcar\nversion: 1.1.0\nstorage:\n  luks:\n    - name: d\n      device: /dev/sdb\n${extra}`;

  it("serves the highest spec each Flatcar line accepts", () => {
    const src = { butane: "variant: flatcar\nversion: 1.0.0\n" };
    expect(renderIgnition({ source: src, values: {} }).spec).toBe("3.3.0");
    expect(renderIgnition({ source: src, values: {}, flatcarVersion: "3510.3.2" }).spec).toBe("3.3.0");
    expect(renderIgnition({ source: src, values: {}, flatcarVersion: "4081.2.0" }).config.ignition.version).toBe(
      "3.4.0",
    );
    expect(renderIgnition({ source: src, values: {}, flatcarVersion: "4230.2.1" }).config.ignition.version).toBe(
      "3.5.0",
    );
    expect(renderIgnition({ source: { butane: v11("") }, values: {}, flatcarVersion: "3510.3.2" }).spec).toBe("3.3.0");
  });

  it("refuses releases that only take spec 2.x, and non-versions", () => {
    expect(
      failure(() =>
        renderIgnition({
          source: { butane: "variant: flatcar\nversion: 1.0.0\n" },
          values: {},
          flatcarVersion: "3033.3.18",
        }),
      ).message,
    ).toContain("only accepts Ignition spec 2.x");
    expect(
      failure(() =>
        renderIgnition({
          source: { butane: "variant: flatcar\nversion: 1.0.0\n" },
          values: {},
          flatcarVersion: "current",
        }),
      ).message,
    ).toContain("not a Flatcar version");
  });

  it("a field the target spec lacks is an error naming it", () => {
    const e = failure(() =>
      renderIgnition({ source: { butane: v11("      discard: true\n") }, values: {}, flatcarVersion: "3510.3.2" }),
    );
    expect(e.first).toMatchObject({ path: "$.storage.luks[0].discard", line: 7 });
    expect(e.message).toContain("needs Ignition spec 3.4.0, but Flatcar 3510.3.2 accepts at most 3.3.0");
  });

  it("setuid/setgid/sticky bits are served with Ignition's warning (no spec before 3.6.0 applies them)", () => {
    const bits = renderIgnition({
      source: { butane: "variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /x\n      mode: 04755\n" },
      values: {},
      flatcarVersion: "3510.3.2",
    });
    expect(bits.spec).toBe("3.3.0");
    expect(bits.warnings).toMatchObject([
      { path: "$.storage.files[0].mode", message: expect.stringMatching(/not supported or functional/) },
    ]);
  });

  it("raw JSON: validated, down-converted when lossless, else the field is named", () => {
    const j34 = (luks: object) =>
      JSON.stringify({
        ignition: { version: "3.4.0" },
        storage: { luks: [{ name: "d", device: "/dev/sdb", ...luks }] },
      });
    const down = renderIgnition({ source: { json: j34({ discard: null }) }, values: {}, flatcarVersion: "3510.3.2" });
    expect(down.config).toEqual({
      ignition: { version: "3.3.0" },
      storage: { luks: [{ name: "d", device: "/dev/sdb" }] },
    });
    const e = failure(() =>
      renderIgnition({
        source: { json: j34({ openOptions: ["--perf-no_read_workqueue"] }) },
        values: {},
        flatcarVersion: "3510.3.2",
      }),
    );
    expect(e.first?.path).toBe("$.storage.luks[0].openOptions");
    const cex = JSON.stringify({
      ignition: { version: "3.5.0" },
      storage: { luks: [{ name: "d", device: "/dev/sdb", cex: { enabled: true } }] },
    });
    expect(
      failure(() => renderIgnition({ source: { json: cex }, values: {}, flatcarVersion: "4081.2.0" })).message,
    ).toContain("$.storage.luks[0].cex: needs Ignition spec 3.5.0");
    expect(renderIgnition({ source: { json: cex }, values: {}, flatcarVersion: "4230.2.1" }).spec).toBe("3.5.0");
    const up = renderIgnition({
      source: { json: JSON.stringify({ ignition: { version: "3.3.0" } }) },
      values: {},
      flatcarVersion: "4230.2.1",
    });
    expect(up.config).toEqual({ ignition: { version: "3.5.0" } });
  });

  it("raw JSON: bad versions, newer keys, unknown keys and syntax errors", () => {
    expect(
      failure(() => renderIgnition({ source: { json: '{"ignition":{"version":"2.2.0"}}' }, values: {} })).message,
    ).toContain("2.x/1.x line");
    expect(
      failure(() => renderIgnition({ source: { json: '{"ignition":{"version":"3.7.0-experimental"}}' }, values: {} }))
        .message,
    ).toContain("experimental");
    const newer = failure(() =>
      renderIgnition({
        source: {
          json: '{"ignition":{"version":"3.3.0"},\n"storage":{"luks":[{"name":"d","device":"/dev/sdb","discard":true}]}}',
        },
        values: {},
      }),
    );
    expect(newer.message).toContain('"discard" needs Ignition spec 3.4.0; this config is 3.3.0');
    expect(newer.first).toMatchObject({ line: 2 });
    const unknown = '{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/x","permissions":1}]}}';
    const lax = renderIgnition({ source: { json: unknown }, values: {} });
    expect(lax.warnings[0]).toMatchObject({
      severity: "warning",
      message: 'unknown key "permissions"',
      line: 1,
      column: 66,
    });
    expect(lax.config).toEqual({ ignition: { version: "3.3.0" }, storage: { files: [{ path: "/x" }] } });
    expect(failure(() => renderIgnition({ source: { json: unknown }, values: {}, strict: true })).message).toContain(
      'unknown key "permissions"',
    );
    const syntax = failure(() =>
      renderIgnition({ source: { json: '{"ignition":\n  {"version": "3.3.0",}}' }, values: {} }),
    );
    expect(syntax.first).toMatchObject({ line: 2 });
    expect(syntax.message).toContain("not valid JSON");
  });
});

describe("YAML typing and encoding", () => {
  const files = (lines: string) => `variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n${lines}`;

  it("string fields keep their source text; integer fields read YAML 1.1 octal", () => {
    const raw = ["0644", "yes", "1e3", "true", "0x1F", "1_000", "null-ish", ".inf"];
    const bu = files(
      raw.map((r, i) => `    - path: /f${i}\n      mode: 0755\n      contents:\n        inline: ${r}\n`).join(""),
    );
    const { config } = translateButane(bu);
    raw.forEach((r, i) => expect(fileText(config, i)).toBe(r));
    expect(
      (config as unknown as { storage: { files: { mode: number }[] } }).storage.files.every((f) => f.mode === 0o755),
    ).toBe(true);
    const modes = translateButane(
      files("    - path: /a\n      mode: 420\n    - path: /b\n      mode: 0o600\n    - path: /c\n      mode: 0\n"),
    ).config as unknown as { storage: { files: { mode: number }[] } };
    expect(modes.storage.files.map((f) => f.mode)).toEqual([420, 384, 0]);
  });

  it("contents take the shortest encoding and decode to the original bytes", () => {
    const cases: [string, string][] = [
      ["plain", "hello"],
      ["spaces and newlines", "a b\nc d\n"],
      ["repetitive", "kindling ".repeat(200)],
      ["symbols", "#!%^*()[]{}<>|\\\"'`"],
    ];
    for (const [what, text] of cases) {
      const bu = files(`    - path: /x\n      contents:\n        inline: ${JSON.stringify(text)}\n`);
      const f = (translateButane(bu).config as Cfg).storage?.files?.[0];
      const source = f?.contents?.source ?? "";
      expect(decodeContents(source, f?.contents?.compression).toString("utf8"), what).toBe(text);
      const percent = `data:,${[...Buffer.from(text)].map((b) => (/[A-Za-z0-9\-_.!~*'()]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("")}`;
      const b64 = `data:;base64,${Buffer.from(text).toString("base64")}`;
      expect(source.length, what).toBeLessThanOrEqual(Math.min(percent.length, b64.length));
      if (what === "repetitive") expect(f?.contents?.compression).toBe("gzip");
      else expect(f?.contents?.compression).toBe("");
    }
  });

  it("output is canonical: key order and spacing do not depend on the input", () => {
    const a = files("    - path: /x\n      mode: 0644\n      overwrite: true\n      contents:\n        inline: hi\n");
    const b = `storage:\n  files:\n    - contents: {inline: hi}\n      overwrite: true\n      mode: 420\n      path: /x\nversion: 1.0.0\nvariant: flatcar\n`;
    expect(JSON.stringify(translateButane(a).config)).toBe(JSON.stringify(translateButane(b).config));
    expect(JSON.stringify(translateButane(a).config)).toBe(
      '{"ignition":{"version":"3.3.0"},"storage":{"files":[{"overwrite":true,"path":"/x","contents":{"compression":"","source":"data:,hi"},"mode":420}]}}',
    );
  });

  it("unknown keys warn with line:column, and fail in strict mode", () => {
    const bu = files("    - path: /x\n      owner: core\n");
    expect(translateButane(bu).warnings).toEqual([
      { severity: "warning", message: 'unknown key "owner"', path: "$.storage.files[0]", line: 6, column: 7 },
    ]);
    expect(failure(() => translateButane(bu, { strict: true })).first).toMatchObject({
      severity: "error",
      line: 6,
      column: 7,
    });
  });

  it("an alias bomb is refused, not expanded", () => {
    const many = (ref: string) => `[${Array(100).fill(ref).join(", ")}]`;
    const bomb =
      "variant: flatcar\nversion: 1.0.0\n" +
      "h: &h {name: A, value: b}\n" +
      `r: &r {source: "http://e/x", http_headers: ${many("*h")}}\n` +
      `f: &f {path: /x, append: ${many("*r")}}\n` +
      `storage: {files: ${many("*f")}}\n`;
    expect(failure(() => translateButane(bomb)).message).toMatch(/document expands to more than 200000 nodes/);
  });

  it("malformed input never throws anything but IgnitionError", () => {
    const corpus = fileURLToPath(new URL("./corpus/", import.meta.url));
    const seed =
      readFileSync(`${corpus}disks-raid-fs-luks.bu`, "utf8") +
      readFileSync(`${corpus}ignition-section.bu`, "utf8").replace(/^variant.*\nversion.*\n/, "");
    let state = 42;
    const rand = (n: number) => ((state = (state * 1103515245 + 12345) & 0x7fffffff), state % n);
    const junk = [
      "{",
      "}",
      "[",
      "]",
      ":",
      "-",
      " ",
      "\n",
      "&a",
      "*a",
      "!!",
      "'",
      '"',
      "{{",
      "}}",
      "0",
      "#",
      "\t",
      "\u0000",
      "|",
    ];
    for (let i = 0; i < 300; i++) {
      const chars = [...seed];
      for (let k = 0; k < 1 + rand(4); k++) chars.splice(rand(chars.length), rand(3), junk[rand(junk.length)] ?? "");
      const text = chars.join("");
      try {
        translateButane(text);
        renderIgnition({ source: { butane: text }, values: machine, flatcarVersion: "3510.3.2" });
      } catch (e) {
        expect(e, text).toBeInstanceOf(IgnitionError);
      }
    }
  });
});

describe("checkProfileIgnition (API create/update)", () => {
  it("accepts template references without machine values", () => {
    const bu = `variant: flatcar\nversion: 1.0.0\nignition:\n  config:\n    merge:\n      - source: "{{ server }}/extra.ign"\nstorage:\n  files:\n    - path: /etc/{{ hostname }}\n      contents:\n        source: "{{ urls.blob }}"\n`;
    expect(checkProfileIgnition({ butane: bu })).toEqual([]);
    expect(checkProfileIgnition({ butane: TEMPLATE })).toEqual([]);
  });

  it("entries that differ only by template references are not duplicates before the machine is known", () => {
    const bu = `variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/{{ hostname }}\n    - path: /etc/{{ mac }}\nsystemd:\n  units:\n    - name: "{{ vars.a }}.service"\n    - name: "{{ vars.b }}.service"\n`;
    expect(checkProfileIgnition({ butane: bu })).toEqual([]);
    const same = `variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/a\n    - path: /etc/a\n`;
    expect(checkProfileIgnition({ butane: same })[0]).toMatchObject({ path: "$.storage.files[1]", line: 6 });
  });

  it("reports syntax, template and semantic errors with positions", () => {
    const bu =
      "variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: etc/x\n    - path: /y\n      contents:\n        inline: '{{ hostname'\n";
    const d = checkProfileIgnition({ butane: bu });
    expect(d).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ severity: "error", path: "$.storage.files[1].contents.inline", line: 8 }),
      ]),
    );
    const semantic = checkProfileIgnition({
      butane: "variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: etc/x\n",
    });
    expect(semantic).toEqual([
      expect.objectContaining({ severity: "error", path: "$.storage.files[0].path", line: 5, column: 13 }),
    ]);
    expect(
      checkProfileIgnition({ json: '{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"x"}]}}' })[0]?.path,
    ).toBe("$.systemd.units[0].name");
  });

  it("with a Flatcar version, checks the profile can be served to it", () => {
    const bu =
      "variant: flatcar\nversion: 1.1.0\nstorage:\n  luks:\n    - name: d\n      device: /dev/sdb\n      discard: true\n";
    expect(checkProfileIgnition({ butane: bu }, { flatcarVersion: "4081.2.0" })).toEqual([]);
    expect(checkProfileIgnition({ butane: bu }, { flatcarVersion: "3510.3.2" })[0]?.path).toBe(
      "$.storage.luks[0].discard",
    );
  });
});
