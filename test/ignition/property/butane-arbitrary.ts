import fc from "fast-check";
import { stringify } from "yaml";

/**
 * Random Butane documents (variant flatcar 1.0.0 or 1.1.0) that Ignition must accept: every value is drawn
 * from inside the rules, close to their edges — names with dots and non-ASCII, labels at their byte limits,
 * modes across the whole range, text with every kind of character, URLs of every scheme Ignition fetches,
 * unit files with comments and continuations, partitions placed and unplaced. Paths are kept apart by kind
 * (files, directories and links under their own parents) so no two entries claim one node and nothing is
 * created through a link.
 */
const segment = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._~@+-]{0,11}$/).filter((s) => s !== "." && s !== "..");
const unicodeSegment = fc.oneof(segment, fc.constantFrom("é", "日本", "..data", "a b", "x%20y", "ñ-1"));
const pathUnder = (root: string) =>
  fc.array(unicodeSegment, { minLength: 1, maxLength: 3 }).map((segs) => `${root}/${segs.join("/")}`);
const uniqueBy = <T>(arb: fc.Arbitrary<T>, key: (t: T) => string, max: number) =>
  fc.uniqueArray(arb, { selector: key, maxLength: max });

const text = fc.oneof(
  // Raw NEL/LS/PS are refused in a document (YAML 1.1 and 1.2 read them differently); tested in the corpus.
  fc.string({ unit: "grapheme", maxLength: 60 }).map((t) => t.replace(/[\u0085\u2028\u2029]/g, " ")),
  fc.string({ unit: "binary-ascii", maxLength: 40 }),
  fc.constantFrom("", "0644", "yes", "null", "~", "#!/bin/sh\necho hi\n", "a".repeat(300), "%41 {{ }} <&>"),
);
const printable = fc.stringMatching(/^[ -~]{0,40}$/);
const host = fc.constantFrom("example.com", "10.0.0.1:8080", "[fd00::1]:443", "h-1.example", "x.io:99999");
const httpUrl = fc
  .tuple(fc.constantFrom("http", "https"), host, fc.stringMatching(/^[A-Za-z0-9/._~%-]{0,20}$/))
  .filter(([, , p]) => !/%(?![0-9A-Fa-f]{2})/.test(p))
  .map(([s, h, p]) => `${s}://${h}/${p}`);
const dataUrl = fc.oneof(
  fc.uint8Array({ maxLength: 30 }).map((b) => `data:;base64,${Buffer.from(b).toString("base64")}`),
  fc.stringMatching(/^[A-Za-z0-9._~!*'()-]{0,30}$/).map((s) => `data:,${s}`),
  fc.constant("data:text/plain;charset=utf-8,hi%0A"),
);
const sourceUrl = fc.oneof(
  httpUrl,
  dataUrl,
  fc.constantFrom("s3://bucket/key", "s3://b/k?versionId=v1", "gs://bucket/obj", "tftp://10.0.0.1/boot/x"),
);
const hash = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256-${h}`),
  fc.stringMatching(/^[0-9A-F]{128}$/).map((h) => `sha512-${h}`),
);
const header = fc.record({
  name: fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/),
  value: printable.filter((v) => v.trim() !== ""),
});
const remote = fc.record(
  {
    source: httpUrl,
    http_headers: uniqueBy(header, (h) => h.name, 3),
    verification: fc.record({ hash }),
  },
  { requiredKeys: ["source"] },
);
const contents = fc.oneof(
  fc.record({ inline: text }),
  remote,
  fc.record({ source: sourceUrl }, { requiredKeys: ["source"] }),
  fc.record({ local: fc.constantFrom("motd.txt", "hello.service", "/keys.pub", "sub/../env.conf", "hello.gz") }),
);
const owner = fc.oneof(
  fc.record({ id: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({ name: fc.constantFrom("core", "root", "nobody", "app") }),
);
const mode = fc.integer({ min: 0, max: 0o7777 });

const files = uniqueBy(
  fc.record(
    {
      path: pathUnder("/srv/f"),
      mode,
      contents,
      append: fc.array(fc.record({ inline: text }), { maxLength: 2 }),
      user: owner,
      group: owner,
    },
    { requiredKeys: ["path"] },
  ),
  (f) => f.path,
  6,
).map((fs) =>
  fs.map((f) => {
    // compression: gzip is only right for contents that are gzip data.
    const c = f.contents as Record<string, unknown> | undefined;
    if (c?.local === "hello.gz") c.compression = "gzip";
    return f.contents && "source" in (f.contents as object) ? { ...f, overwrite: true } : f;
  }),
);
const directories = uniqueBy(
  fc.record({ path: pathUnder("/srv/d"), mode, user: owner }, { requiredKeys: ["path"] }),
  (d) => d.path,
  4,
);
const links = uniqueBy(
  // One level only: a link under another link would be created through it, which Ignition refuses.
  fc.record({ path: unicodeSegment.map((s) => `/srv/l/${s}`), target: fc.oneof(pathUnder("/opt"), segment) }),
  (l) => l.path,
  4,
);

const unitKey = fc.stringMatching(/^[A-Z][A-Za-z]{0,12}$/);
const unitValue = fc.stringMatching(/^[ -~]{0,50}$/).filter((v) => !v.endsWith("\\"));
const unitSection = fc
  .tuple(
    fc.constantFrom("Unit", "Service", "Install", "Mount", "X-Custom"),
    fc.array(fc.tuple(unitKey, unitValue, fc.boolean()), { maxLength: 4 }),
  )
  .map(
    ([name, opts]) =>
      `[${name}]\n${opts.map(([k, v, cont]) => (cont ? `${k}=${v} \\\n  more\n` : `${k}=${v}\n`)).join("")}`,
  );
const unitText = fc
  .tuple(fc.constantFrom("", "# comment\n", "; c \\\n  skipped\n"), fc.array(unitSection, { maxLength: 3 }))
  .map(([lead, sections]) => lead + sections.join("\n"));
const unitName = fc
  .tuple(
    fc.stringMatching(/^[a-z0-9][a-z0-9:_.-]{0,15}$/),
    fc.constantFrom(".service", ".socket", ".timer", ".path", ".target", ".slice", ".mount", ".automount"),
  )
  .map(([n, s]) => n + s);
const units = uniqueBy(
  fc.record(
    {
      name: unitName,
      enabled: fc.boolean(),
      mask: fc.boolean(),
      contents: unitText,
      dropins: uniqueBy(
        fc.record({ name: segment.map((s) => `${s}.conf`), contents: unitText }, { requiredKeys: ["name"] }),
        (d) => d.name,
        2,
      ),
    },
    { requiredKeys: ["name"] },
  ),
  (u) => u.name,
  4,
);

const userName = fc.stringMatching(/^[a-z_][a-z0-9_-]{0,15}$/);
const users = uniqueBy(
  fc.record(
    {
      name: userName,
      uid: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      gecos: text,
      home_dir: pathUnder("/home"),
      shell: fc.constantFrom("/bin/bash", "/bin/sh", "/sbin/nologin"),
      groups: fc.uniqueArray(fc.constantFrom("docker", "sudo", "wheel", "adm"), { maxLength: 3 }),
      ssh_authorized_keys: fc.uniqueArray(
        printable.map((k) => `ssh-ed25519 AAAA${k}`),
        { maxLength: 3 },
      ),
      password_hash: fc.constantFrom("$6$rounds=4096$x$y", "*", "!"),
      no_create_home: fc.boolean(),
      system: fc.boolean(),
    },
    { requiredKeys: ["name"] },
  ),
  (u) => u.name,
  3,
);
const groups = uniqueBy(
  fc.record(
    { name: userName, gid: fc.integer({ min: 0, max: 65535 }), system: fc.boolean() },
    { requiredKeys: ["name"] },
  ),
  (g) => g.name,
  3,
);

/** A label of at most `max` UTF-8 bytes, often exactly at the limit, sometimes multi-byte. */
const label = (max: number, noColon = false) =>
  fc
    .oneof(
      fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      fc.constantFrom("é".repeat(Math.floor(max / 2)), "x".repeat(max), "data-1"),
    )
    .map((s) => (noColon ? s.replace(/:/g, "") : s))
    .map((s) => {
      while (Buffer.byteLength(s) > max) s = [...s].slice(0, -1).join("");
      return s;
    })
    .filter((s) => s !== "");

const FS_LABEL: Record<string, number> = { ext4: 16, btrfs: 256, xfs: 12, swap: 15, vfat: 11 };
const filesystems = fc
  .uniqueArray(fc.integer({ min: 1, max: 9 }), { maxLength: 3 })
  .chain((ns) =>
    fc.tuple(
      ...ns.map((n) =>
        fc.constantFrom("ext4", "btrfs", "xfs", "swap", "vfat", "none").chain((format) =>
          fc.record(
            {
              device: fc.constant(`/dev/vdb${n}`),
              format: fc.constant(format),
              label: label(FS_LABEL[format] ?? 64),
              path: format === "swap" ? fc.constant(undefined) : fc.constant(`/var/mnt/m${n}`),
              wipe_filesystem: fc.boolean(),
              mount_options: fc.array(fc.constantFrom("noatime", "discard", "ro", "pri=10"), { maxLength: 3 }),
              with_mount_unit: fc.boolean(),
            },
            { requiredKeys: ["device", "format"] },
          ),
        ),
      ),
    ),
  )
  // A mount unit needs a path unless it is swap; format none takes no label.
  .map((fss) =>
    fss.map((fs) => ({
      ...fs,
      ...(fs.format === "none" ? { label: undefined } : {}),
      ...(fs.format !== "swap" && !fs.path ? { with_mount_unit: undefined } : {}),
    })),
  );

const partitions = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 2048 }), fc.boolean()), { maxLength: 4 })
  .chain((sizes) =>
    fc.tuple(...sizes.map(() => label(36, true))).map((labels) => {
      let start = 1;
      const seen = new Set<string>();
      return sizes.map(([size, placed], i) => {
        const p: Record<string, unknown> = { number: i + 1, size_mib: size };
        if (placed) p.start_mib = start;
        start += size;
        const l = labels[i] ?? "";
        if (!seen.has(l)) p.label = l;
        seen.add(l);
        return p;
      });
    }),
  );
const disks = fc
  .uniqueArray(fc.constantFrom("/dev/vda", "/dev/vdc", "/dev/disk/by-id/virtio-x"), { maxLength: 2 })
  .chain((ds) =>
    fc.tuple(...ds.map((device) => fc.record({ device: fc.constant(device), wipe_table: fc.boolean(), partitions }))),
  );

const luks = (v11: boolean) =>
  uniqueBy(
    fc.record(
      {
        name: segment.filter((s) => !s.includes("/")),
        device: fc.constantFrom("/dev/vdd1", "/dev/disk/by-partlabel/SECRET"),
        label: label(47),
        key_file: fc.record({ inline: text }),
        options: fc.array(fc.constantFrom("--cipher", "aes-xts-plain64"), { maxLength: 2 }),
        wipe_volume: fc.boolean(),
        ...(v11
          ? {
              discard: fc.boolean(),
              open_options: fc.uniqueArray(fc.constantFrom("--perf-no_read_workqueue", "--allow-discards"), {
                maxLength: 2,
              }),
            }
          : {}),
      },
      { requiredKeys: ["name", "device"] },
    ),
    (l) => l.name,
    2,
  );

const ignitionSection = fc.record(
  {
    config: fc.record({ merge: uniqueBy(fc.record({ source: httpUrl }), (r) => r.source, 2) }),
    timeouts: fc.record({ http_response_headers: fc.nat(600), http_total: fc.nat(600) }),
    security: fc.record({
      tls: fc.record({ certificate_authorities: uniqueBy(fc.record({ source: httpUrl }), (r) => r.source, 2) }),
    }),
    proxy: fc.record({
      http_proxy: fc.constant("http://proxy.example:3128"),
      https_proxy: fc.constant("https://proxy.example:3129"),
      no_proxy: fc.uniqueArray(fc.constantFrom("localhost", ".example.com", "10.0.0.0/8"), { maxLength: 3 }),
    }),
  },
  { requiredKeys: [] },
);

const kernelArguments = fc
  .uniqueArray(fc.constantFrom("quiet", "console=ttyS0", "flatcar.autologin", "mitigations=off", "nosmt"), {
    maxLength: 5,
  })
  .chain((args) =>
    fc
      .integer({ min: 0, max: args.length })
      .map((k) => ({ should_exist: args.slice(0, k), should_not_exist: args.slice(k) })),
  );

export const butaneDocument = fc.boolean().chain((v11) =>
  fc
    .record(
      {
        ignition: ignitionSection,
        storage: fc.record({ files, directories, links, disks, filesystems, luks: luks(v11) }, { requiredKeys: [] }),
        systemd: fc.record({ units }),
        passwd: fc.record({ users, groups }, { requiredKeys: [] }),
        kernel_arguments: kernelArguments,
      },
      { requiredKeys: [] },
    )
    .map((doc) => ({ variant: "flatcar", version: v11 ? "1.1.0" : "1.0.0", ...doc })),
);

/**
 * The document as Butane YAML (keys in generation order, undefined fields left out). Every string is double
 * quoted, and characters a YAML 1.1 reader refuses raw (controls, DEL) are written as escapes.
 */
export function toYaml(doc: unknown): string {
  return stringify(doc, { lineWidth: 0, defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" }).replace(
    /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
