/**
 * Hunts for disagreements with Butane outside the corpus: translates random documents (the property test's
 * generator, plus random mutations that break them) with both the real Butane and Kindling and prints every
 * case where they differ (one refuses and the other not, or the outputs differ), writing the document to a
 * temporary file so it can be looked at and added to corpus/edge/. Not part of the test suite (it needs Butane):
 *
 *   npx tsx test/ignition/tools/differential-fuzz.ts /tmp/butane [RUNS] [SEED]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { IgnitionError, translateButane } from "../../../src/ignition/index.ts";
import { marshal } from "../../../src/ignition/marshal.ts";
import { butaneDocument, toYaml } from "../property/butane-arbitrary.ts";

const butane = process.argv[2] ?? "";
const runs = Number(process.argv[3] ?? 300);
const seed = Number(process.argv[4] ?? Date.now() % 1e9);
const filesDir = fileURLToPath(new URL("../corpus/files", import.meta.url));

/** Small edits that push a valid document over some rule's edge. */
const MUTATIONS: ((y: string) => string)[] = [
  (y) => y.replace(/mode: (\d+)/, "mode: 0$1"),
  (y) => y.replace(/path: \/srv\/f\//, "path: srv/f/"),
  (y) => y.replace(/enabled: true/, "enabled: yes"),
  (y) => y.replace(/uid: (\d+)/, "uid: $1.0"),
  (y) => y.replace(/label: (\S+)/, "label: $1$1$1"),
  (y) => y.replace(/source: (\S+)/, "source: $1 x"),
  (y) => y.replace(/name: (\S+)\.service/, "name: $1.servic"),
  (y) => y.replace(/number: 2/, "number: 1"),
  (y) => y.replace(/start_mib: (\d+)/, "start_mib: 2"),
  (y) => y.replace(/\[Service\]/, "[Service"),
  (y) => y.replace(/should_exist:\n/, "should_exist:\n      - quiet\n      - quiet\n"),
  (y) => y.replace(/format: (\w+)/, "format: ntfs"),
  (y) => `${y}\nstorage2: 1\n`,
  (y) => y.replace(/inline: /, "inline: !!binary aGk= #"),
  (y) => y,
];

/** Text spliced in at a random place: YAML syntax and scalars each reader types its own way. */
const SPLICES = [
  ": ",
  "- ",
  "~",
  "&a ",
  "*a",
  "!!str ",
  "0x",
  '"',
  "'",
  "#",
  "\t",
  "  ",
  "\n",
  "<<: {}",
  "yes",
  "1e3",
  "null",
  "[]",
  "{}",
  "? ",
  "|",
  ">",
  "%",
  "@",
  "`",
  ",",
  "\\",
  "0o7",
  "_",
  ".5",
  "-",
];
const edit = fc.oneof(
  fc.nat(MUTATIONS.length - 1).map((m) => MUTATIONS[m] as (y: string) => string),
  fc.tuple(fc.nat(), fc.constantFrom(...SPLICES), fc.nat(3)).map(([at, text, cut]) => (y: string) => {
    const i = at % (y.length + 1);
    // Never split a surrogate pair: a file read as UTF-8 cannot hold half of one.
    return (y.slice(0, i) + text + y.slice(i + cut)).replace(
      /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
      "\ufffd",
    );
  }),
);

let differ = 0;
const out = mkdtempSync(`${tmpdir()}/kindling-fuzz-`);
fc.assert(
  fc.property(butaneDocument, edit, fc.boolean(), (doc, mutate, strict) => {
    const yaml = mutate(toYaml(doc));
    const r = spawnSync(butane, ["--pretty", "--raw-errors", "-d", filesDir, ...(strict ? ["--strict"] : [])], {
      input: yaml,
      encoding: "utf8",
    });
    let mine: string | undefined;
    let error = "";
    try {
      mine = `${marshal(translateButane(yaml, { strict, filesDir }).config, true)}\n`;
    } catch (e) {
      if (!(e instanceof IgnitionError)) throw e;
      error = e.message.split("\n")[0] ?? "";
    }
    const theirs = r.status === 0 ? r.stdout : undefined;
    const same =
      (mine === undefined && theirs === undefined) ||
      (mine !== undefined && theirs !== undefined && (mine === theirs || mine.includes('"gzip"')));
    if (!same) {
      differ++;
      const file = `${out}/${differ}.bu`;
      writeFileSync(file, yaml);
      process.stdout.write(
        `--- ${file} (strict=${strict}): kindling ${mine === undefined ? `refused: ${error}` : "accepted"}; butane ${theirs === undefined ? `refused: ${r.stderr.trim().split("\n")[0]}` : "accepted"}\n`,
      );
    }
  }),
  { seed, numRuns: runs },
);
process.stdout.write(`${runs} documents, seed ${seed}: ${differ} differ\n`);
