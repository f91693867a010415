/**
 * Seeded generators of unit texts and resource URLs built around the edges of Ignition's checks (the
 * characters each parser treats specially, lines near systemd's 2048-byte limit). Shared by the fixture tool,
 * which records Ignition's verdicts, and oracle.test.ts, which regenerates the same inputs.
 */
let seed = 14;
/** Restarts the sequence, so the same calls give the same inputs. */
export function reseed(s: number): void {
  seed = s;
}
const rnd = (n: number) => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};
const pick = <T>(a: readonly T[]): T => a[rnd(a.length)] as T;

const UNIT_ATOMS = [
  "[",
  "]",
  "=",
  "#",
  ";",
  "\\",
  " ",
  "\n",
  "\r",
  "a",
  "Key",
  "[Service]\n",
  "[Install]\n",
  "é",
  "\t",
];
const UNIT_ATOMS2 = ["X=y\n", "\\ \n", "\u00a0", "WantedBy=multi-user.target\n", "# c \\\n"];
export function unitText(): string {
  let s = "";
  for (let j = rnd(30); j > 0; j--) s += rnd(4) ? pick(UNIT_ATOMS) : pick(UNIT_ATOMS2);
  // Lines near systemd's 2048-byte limit, alone and after enough text that the parser's buffer has moved.
  if (rnd(8) === 0) s += "b".repeat(2030 + rnd(30));
  if (rnd(25) === 0) s = `[S]\n${"A=b\n".repeat(rnd(1200))}X=${"c".repeat(2030 + rnd(30))}\n${s}`;
  return s;
}

const SCHEMES = [
  "http://",
  "https://",
  "tftp://",
  "s3://",
  "gs://",
  "data:",
  "arn:",
  "ftp://",
  "HTTP://",
  "",
  ":",
  "x-y:",
];
const HOSTS = [
  "example.com",
  "a b",
  "[::1]",
  "[::1",
  "h:99999",
  "h:8x",
  "h:",
  "u@h",
  "u:p@h",
  "u{@h",
  "%41",
  "%zz",
  "é.com",
  "a|b",
  "",
];
const PATHS = [
  "/",
  "/a",
  "/a%20b",
  "/a%zz",
  "/a b",
  "?versionId=",
  "?versionId=1",
  "?versionId",
  "?a=1&versionId=&b",
  "#frag",
  "#%zz",
  "/é",
  "/<x>",
  "\t",
  "%",
  "/x?y#z",
  "?a;versionId=",
  "#f\t",
];
const DATA = [
  ",",
  ",a",
  ",a b",
  ",%41",
  ",%4",
  ";base64,aGk=",
  ";base64,aGk",
  ";base64,a\nGk=",
  "text/plain,x",
  "text/plain;charset=utf-8,x",
  "foo/bar,x",
  "x-foo/bar,x",
  "text/,x",
  "text,x",
  ";a=b,x",
  ';a="q q",x',
  ";a,x",
  ";=b,x",
  ";base65,x",
  "text/plain;base64,***",
  ",#",
  ",é",
  ",<",
  ",{",
  ",~'()*!",
  "",
  ";",
  "image/png;a=%zz,x",
];
const ARNS = [
  "aws:s3:::bucket/key",
  "aws:s3:::bucket",
  "aws:ec2:us-east-1:1:instance/i",
  "aws:s3:us-east-1:123:accesspoint/ap/object/key",
  "aws:s3:us-east-1:123:accesspoint/ap",
  ":s3:::b/k",
  "aws:s3:::",
  "aws:s3:::b/k?versionId=",
  "aws:s3:::b/k?versionId=x",
];
export function url(): string {
  const scheme = pick(SCHEMES);
  if (scheme === "data:") return scheme + pick(DATA) + (rnd(3) ? "" : pick(DATA));
  if (scheme === "arn:") return scheme + pick(ARNS);
  return scheme + pick(HOSTS) + pick(PATHS) + (rnd(2) ? pick(PATHS) : "");
}

export const SEED = 14;
export const UNITS = 600;
export const URL_TRIES = 4000;

export function inputs(): { units: string[]; urls: string[] } {
  reseed(SEED);
  const units = Array.from({ length: UNITS }, unitText);
  const urls = [...new Set(Array.from({ length: URL_TRIES }, url))];
  return { units, urls };
}
