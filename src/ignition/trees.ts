import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { posix } from "node:path";
import { encodeContents } from "./dataurl.ts";
import { localPath } from "./local.ts";
import type { Sugar } from "./parsed.ts";

type Obj = Record<string, unknown>;

/** Names in the order Go's filepath.Walk visits them: by bytes of their UTF-8 form (not JS's UTF-16 order). */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * `storage.trees`: one `files` entry per regular file (mode 0755 if any execute bit is set, else 0644) and one
 * `links` entry per symlink, in walk order after the entries written out. An entry written out for the same
 * path without contents (or target) supplies the other attributes; one with contents, or a node of another
 * kind there, is a conflict.
 */
export function desugarTrees(storage: Obj, path: string, sg: Sugar): void {
  const trees = storage.trees as { local: string; path?: string | null }[] | undefined;
  delete storage.trees;
  if (!trees?.length) return;
  const files = ((storage.files as Obj[] | undefined) ?? []).slice();
  const links = ((storage.links as Obj[] | undefined) ?? []).slice();
  const dirs = (storage.directories as Obj[] | undefined) ?? [];
  const conflict = (tp: string, r: string) =>
    sg.fail(`${tp}.local`, `tree entry "${r}": matching filesystem node has existing contents or different type`);
  trees.forEach((tree, i) => {
    const tp = `${path}.trees[${i}]`;
    if (tree.local === "") return sg.fail(`${tp}.local`, "local is required");
    const dir = localPath(tree.local, `${tp}.local`, sg);
    if (!dir) return;
    try {
      if (!statSync(dir).isDirectory()) return sg.fail(`${tp}.local`, `"${tree.local}" is not a directory`);
    } catch (e) {
      return sg.fail(
        `${tp}.local`,
        `cannot read tree "${tree.local}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    const exists = (target: string) => [files, links, dirs].some((l) => l.some((n) => n.path === target));
    const walk = (abs: string, rel: string) => {
      for (const name of readdirSync(abs).sort(byteOrder)) {
        const a = `${abs}/${name}`;
        const r = rel ? `${rel}/${name}` : name;
        const target = posix.join(tree.path || "/", r);
        const st = lstatSync(a);
        if (st.isDirectory()) walk(a, r);
        else if (st.isFile()) {
          let file = files.find((f) => f.path === target);
          if (file && (file.contents as Obj | undefined)?.source) return conflict(tp, r);
          if (!file) {
            if (exists(target)) return conflict(tp, r);
            file = { path: target };
            files.push(file);
          }
          const compression = (file.contents as Obj | undefined)?.compression;
          const own = typeof compression === "string" && compression !== "";
          file.contents = { ...(file.contents as Obj | undefined), ...encodeContents(readFileSync(a), !own) };
          if (own) (file.contents as Obj).compression = compression;
          file.mode ??= st.mode & 0o111 ? 0o755 : 0o644;
        } else if (st.isSymbolicLink()) {
          let link = links.find((l) => l.path === target);
          if (link?.target) return conflict(tp, r);
          if (!link) {
            if (exists(target)) return conflict(tp, r);
            link = { path: target };
            links.push(link);
          }
          link.target = readlinkSync(a);
        } else sg.fail(`${tp}.local`, "trees may only contain files, directories, and symlinks");
      }
    };
    walk(dir, "");
  });
  if (files.length) storage.files = files;
  if (links.length) storage.links = links;
}
