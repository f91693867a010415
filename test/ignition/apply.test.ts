import { spawnSync } from "node:child_process";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { renderIgnition } from "../../src/ignition/index.ts";

/**
 * The real consumer: Ignition 2.14 (Debian package `ignition`, the binary its dracut module ships) applies a
 * config Kindling rendered to a scratch root directory (`-platform file -root DIR`, stages fetch-offline and
 * files), and the resulting files, modes, owners, links, units and users are checked on disk. Runs as root,
 * like CI: Ignition chowns files and runs useradd --root. Needs apt packages ignition and policycoreutils.
 */
const IGNITION = "/usr/lib/dracut/modules.d/30ignition/ignition";
const filesDir = fileURLToPath(new URL("./corpus/files", import.meta.url));
const work = mkdtempSync(`${tmpdir()}/kindling-apply-`);
// Ignition writes ~/.ssh as the new user, who must be able to traverse the scratch directories.
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const PROFILE = `variant: flatcar
version: 1.1.0
storage:
  files:
    - path: /etc/hostname
      mode: 0644
      contents:
        inline: "{{ hostname }}"
    - path: /etc/note
      contents:
        inline: "{{ metadata.note }}"
    - path: /etc/kindling/node.env
      mode: 0640
      user: {name: core}
      group: {id: 1600}
      contents:
        inline: |
          MAC={{ mac }}
          RACK={{ labels.rack }}
          SERVER={{ server }}
    - path: /opt/big.txt
      contents:
        inline: ${JSON.stringify("kindling ".repeat(400))}
    - path: /etc/appended
      contents:
        inline: "one\\n"
      append:
        - inline: "two\\n"
    - path: /etc/motd
      contents:
        local: motd.txt
  directories:
    - path: /var/lib/app
      mode: 0750
      user: {id: 1500}
  links:
    - path: /etc/localtime
      target: /usr/share/zoneinfo/UTC
    - path: /etc/hostname.hard
      target: /etc/hostname
      hard: true
  trees:
    - local: tree
      path: /opt/tree
systemd:
  units:
    - name: hello.service
      enabled: true
      contents_local: hello.service
    - name: locksmithd.service
      mask: true
    - name: docker.service
      dropins:
        - name: 10-env.conf
          contents: "[Service]\\nEnvironment=RACK={{ labels.rack }}\\n"
passwd:
  users:
    - name: core
      uid: 1500
      groups: [ops]
      ssh_authorized_keys: ["{{ metadata.key }}"]
  groups:
    - name: ops
      gid: 1600
`;

function scratchRoot(name: string): string {
  const root = `${work}/${name}/root`;
  mkdirSync(`${root}/etc/selinux/targeted/contexts/files`, { recursive: true });
  mkdirSync(`${work}/${name}/run`);
  // What useradd --root and Ignition's relabel step read from the target root.
  // This Ignition build always relabels what it wrote, with setfiles (policycoreutils) and the root's policy.
  writeFileSync(`${root}/etc/selinux/config`, "SELINUX=permissive\nSELINUXTYPE=targeted\n");
  writeFileSync(`${root}/etc/selinux/targeted/contexts/files/file_contexts`, "/.*\tsystem_u:object_r:etc_t:s0\n");
  writeFileSync(`${root}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(`${root}/etc/group`, "root:x:0:\nusers:x:100:\n");
  writeFileSync(`${root}/etc/shadow`, "root:*:19000:0:99999:7:::\n");
  writeFileSync(`${root}/etc/gshadow`, "root:*::\nusers:*::\n");
  return root;
}

function applyWithIgnition(name: string, config: unknown): { root: string; log: string; status: number | null } {
  const root = scratchRoot(name);
  const dir = `${work}/${name}`;
  writeFileSync(`${dir}/config.ign`, JSON.stringify(config));
  let log = "";
  let status: number | null = 0;
  for (const stage of ["fetch-offline", "files"]) {
    const r = spawnSync(
      IGNITION,
      [
        "-platform",
        "file",
        "-stage",
        stage,
        "-root",
        root,
        "-config-cache",
        `${dir}/run/ignition.json`,
        "-state-file",
        `${dir}/run/state`,
        "-neednet",
        `${dir}/run/neednet`,
        "-log-to-stdout",
      ],
      { env: { ...process.env, IGNITION_CONFIG_FILE: `${dir}/config.ign` }, encoding: "utf8", timeout: 60_000 },
    );
    if (r.error) throw r.error;
    log += r.stdout + r.stderr;
    status = r.status;
    if (status !== 0) break;
  }
  return { root, log, status };
}

const mode = (p: string) => lstatSync(p).mode & 0o7777;

describe("Ignition 2.14 applies rendered configs", () => {
  it("runs as root, as CI does", () => {
    expect(process.getuid?.(), "Ignition chowns files and runs useradd: run this suite as root").toBe(0);
  });

  it("writes every kind of node, unit and user exactly as the profile says", () => {
    const hostile = 'node-1" {{ hostname }} *a &b !!str';
    const note = "line one\n  indented: {{ x }}\n*alias &anchor !!tag\n";
    const { config, spec } = renderIgnition({
      source: { butane: PROFILE },
      values: {
        hostname: hostile,
        mac: "52:54:00:12:34:56",
        labels: { rack: "r1" },
        server: "http://10.0.0.1:8080",
        metadata: { key: "ssh-ed25519 AAAAtest test@kindling", note },
      },
      flatcarVersion: "3510.3.2",
      filesDir,
    });
    expect(spec).toBe("3.3.0");
    const { root, log, status } = applyWithIgnition("full", config);
    expect(status, log).toBe(0);
    expect(log).toContain("Ignition finished successfully");

    expect(readFileSync(`${root}/etc/hostname`, "utf8")).toBe(hostile);
    expect(mode(`${root}/etc/hostname`)).toBe(0o644);
    expect(readFileSync(`${root}/etc/note`, "utf8")).toBe(note);
    expect(readFileSync(`${root}/etc/kindling/node.env`, "utf8")).toBe(
      "MAC=52:54:00:12:34:56\nRACK=r1\nSERVER=http://10.0.0.1:8080\n",
    );
    expect(mode(`${root}/etc/kindling/node.env`)).toBe(0o640);
    expect(statSync(`${root}/etc/kindling/node.env`)).toMatchObject({ uid: 1500, gid: 1600 });
    expect(readFileSync(`${root}/opt/big.txt`, "utf8")).toBe("kindling ".repeat(400));
    expect(readFileSync(`${root}/etc/appended`, "utf8")).toBe("one\ntwo\n");
    expect(readFileSync(`${root}/etc/motd`, "utf8")).toBe(readFileSync(`${filesDir}/motd.txt`, "utf8"));

    expect(statSync(`${root}/var/lib/app`).isDirectory()).toBe(true);
    expect(mode(`${root}/var/lib/app`)).toBe(0o750);
    expect(statSync(`${root}/var/lib/app`).uid).toBe(1500);
    expect(readlinkSync(`${root}/etc/localtime`)).toBe("/usr/share/zoneinfo/UTC");
    expect(statSync(`${root}/etc/hostname.hard`).ino).toBe(statSync(`${root}/etc/hostname`).ino);

    expect(readFileSync(`${root}/opt/tree/bin/hello`, "utf8")).toBe(readFileSync(`${filesDir}/tree/bin/hello`, "utf8"));
    expect(mode(`${root}/opt/tree/bin/hello`)).toBe(0o755);
    expect(mode(`${root}/opt/tree/etc/app/app.conf`)).toBe(0o644);
    expect(readlinkSync(`${root}/opt/tree/etc/app/current.conf`)).toBe("app.conf");

    const units = `${root}/etc/systemd/system`;
    expect(readFileSync(`${units}/hello.service`, "utf8")).toBe(readFileSync(`${filesDir}/hello.service`, "utf8"));
    expect(readFileSync(`${root}/etc/systemd/system-preset/20-ignition.preset`, "utf8")).toContain(
      "enable hello.service",
    );
    expect(readlinkSync(`${units}/locksmithd.service`)).toBe("/dev/null");
    expect(readFileSync(`${units}/docker.service.d/10-env.conf`, "utf8")).toBe("[Service]\nEnvironment=RACK=r1\n");

    expect(readFileSync(`${root}/etc/passwd`, "utf8")).toMatch(/^core:x:1500:/m);
    expect(readFileSync(`${root}/etc/group`, "utf8")).toMatch(/^ops:x:1600:core$/m);
    expect(readFileSync(`${root}/home/core/.ssh/authorized_keys.d/ignition`, "utf8")).toContain(
      "ssh-ed25519 AAAAtest test@kindling",
    );
  });

  it("Ignition refuses what validateIgnition would have caught (the guard is needed)", () => {
    const { status, log } = applyWithIgnition("bad", {
      ignition: { version: "3.3.0" },
      storage: { files: [{ path: "relative/x" }] },
    });
    expect(status).not.toBe(0);
    expect(log).toMatch(/path not absolute/);
  });
});
