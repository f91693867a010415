/** `systemd-escape --path`: the unit name systemd derives from a mount point or device path. */
export function systemdEscapePath(path: string): string {
  const trimmed = path.replace(/\/+/g, "/").replace(/^\/|\/$/g, "");
  if (trimmed === "") return "-";
  let out = "";
  for (const [i, ch] of [...Buffer.from(trimmed, "utf8")].entries()) {
    const c = String.fromCharCode(ch);
    if (c === "/") out += "-";
    else if ((c === "." && i === 0) || !/^[A-Za-z0-9:_.]$/.test(c)) out += `\\x${ch.toString(16).padStart(2, "0")}`;
    else out += c;
  }
  return out;
}
