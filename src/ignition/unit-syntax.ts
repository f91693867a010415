/**
 * The unit-file syntax check Ignition applies to unit and drop-in contents before it writes anything:
 * physical lines of at most 2048 bytes; `[Section]` headers closed on their line with nothing after them;
 * inside a section every line that is not blank or a `#`/`;` comment is `Key=Value` (a trailing `\`
 * continues the value on the next line). Text before the first section is ignored, as systemd does.
 * Returns the first problem, or undefined.
 */
export function unitSyntaxError(text: string): string | undefined {
  const lines = text.split("\n");
  let inSection = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (Buffer.byteLength(line) > 2048) return `line ${i + 1} is too long (max 2048 bytes)`;
    const t = line.trim();
    if (t === "" || t.startsWith("#") || t.startsWith(";")) continue;
    if (t.startsWith("[")) {
      const close = t.indexOf("]");
      if (close < 0) return `line ${i + 1}: section header has no closing "]"`;
      const rest = t.slice(close + 1).trim();
      if (rest !== "") return `line ${i + 1}: unexpected "${rest}" after the section header`;
      inSection = true;
      continue;
    }
    if (!inSection) continue;
    if (!t.includes("="))
      return `line ${i + 1}: expected Key=Value, got "${t.length > 40 ? `${t.slice(0, 37)}...` : t}"`;
    while (lines[i]?.trimEnd().endsWith("\\") && i + 1 < lines.length) {
      i++;
      if (Buffer.byteLength(lines[i] ?? "") > 2048) return `line ${i + 1} is too long (max 2048 bytes)`;
    }
  }
  return undefined;
}
