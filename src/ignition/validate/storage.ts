import { posix } from "node:path";
import { type Check, notEmpty, type Obj } from "./check.ts";

const list = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

/**
 * Rules across the storage lists (Ignition's `Storage.Validate`): nothing may be created through a link the
 * config itself creates (Ignition would follow it), links need a target, a hard link may not point at a
 * directory the config creates, and the warnings for owners on hard links and for filesystems that overwrite
 * a partitioned or wiped disk.
 */
export function storageRules(s: Obj, c: Check): void {
  const links = list(s.links);
  const under = (p: unknown) => links.some((l) => String(p).startsWith(`${String(l.path)}/`));
  list(s.directories).forEach((d, i) => {
    if (under(d.path)) c.error(`directories[${i}]`, "directory path includes a link the config creates");
  });
  list(s.files).forEach((f, i) => {
    if (under(f.path)) c.error(`files[${i}]`, "file path includes a link the config creates");
  });
  const dirs = list(s.directories);
  links.forEach((l, i) => {
    if (under(l.path)) c.error(`links[${i}]`, "link path includes a link the config creates");
    if (!notEmpty(l.target)) return c.error(`links[${i}].target`, "link target is required");
    if (l.hard !== true) return;
    let target = posix.normalize(l.target).replace(/(.)\/$/, "$1");
    if (!target.startsWith("/")) target = posix.join(String(l.path), l.target);
    if (dirs.some((d) => d.path === target)) c.error(`links[${i}]`, "hard link target is a directory");
    for (const who of ["user", "group"])
      for (const k of ["id", "name"])
        if ((l[who] as Obj | undefined)?.[k] != null)
          c.warn(`links[${i}].${who}.${k}`, "user/group ignored for hard link");
  });
  const disks = list(s.disks);
  list(s.filesystems).forEach((fs, i) => {
    const disk = disks.find((d) => d.device === fs.device);
    if (!disk) return;
    if (list(disk.partitions).length > 0)
      c.warn(`filesystems[${i}].device`, "filesystem overwrites partitioned device");
    else if (fs.wipeFilesystem !== true && disk.wipeTable === true)
      c.warn(`filesystems[${i}].device`, "device matches disk with wipeTable enabled; filesystem will be wiped");
  });
}

/**
 * Rules across sections (Ignition's `Config.Validate`): a file, directory or link may not sit where a systemd
 * unit or drop-in with contents is written.
 */
export function topLevelRules(cfg: Obj, c: Check): void {
  const written = new Set<string>();
  for (const u of list((cfg.systemd as Obj | undefined)?.units)) {
    if (notEmpty(u.contents)) written.add(`/etc/systemd/system/${String(u.name)}`);
    for (const d of list(u.dropins))
      if (notEmpty(d.contents)) written.add(`/etc/systemd/system/${String(u.name)}.d/${String(d.name)}`);
  }
  const storage = (cfg.storage ?? {}) as Obj;
  for (const kind of ["files", "directories", "links"])
    list(storage[kind]).forEach((n, i) => {
      if (written.has(String(n.path)))
        c.error(`storage.${kind}[${i}].path`, "path conflicts with a systemd unit or drop-in the config writes");
    });
}

/** Partition layout rules of one disk (Ignition's `Disk.Validate`). */
export function diskRules(d: Obj, c: Check): void {
  const parts = list(d.partitions);
  const numbers = new Map<number, number>();
  parts.forEach((p, i) => {
    if (typeof p.number !== "number" || p.number === 0) return;
    if (numbers.has(p.number)) c.error(`partitions[${i}]`, `partition number ${p.number} is used twice`);
    numbers.set(p.number, i);
  });
  const placed = parts.filter(
    (p) => typeof p.startMiB === "number" && typeof p.sizeMiB === "number" && p.startMiB !== 0,
  ) as (Obj & { startMiB: number; sizeMiB: number })[];
  const end = (p: { startMiB: number; sizeMiB: number }) => (p.sizeMiB === 0 ? p.startMiB : p.startMiB + p.sizeMiB - 1);
  overlap: for (const p of placed)
    for (const o of placed) {
      if (p === o) continue;
      const pe = end(p);
      const oe = end(o);
      if (
        (p.startMiB >= o.startMiB && p.startMiB <= oe) ||
        (pe >= o.startMiB && pe <= oe) ||
        (p.startMiB < o.startMiB && pe > oe)
      ) {
        c.error(`partitions[${parts.indexOf(o)}]`, "partitions overlap");
        break overlap;
      }
    }
  if (parts.some((p) => !p.number) && parts.some((p) => p.shouldExist === false))
    c.error("partitions", "a partition without a number cannot sit beside one with shouldExist: false");
  const labels = new Set<string>();
  for (const [i, p] of parts.entries()) {
    if (typeof p.label !== "string") continue;
    if (labels.has(p.label)) {
      c.error(`partitions[${i}]`, `partition label "${p.label}" is used twice`);
      break;
    }
    labels.add(p.label);
  }
}
