import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { systemdEscapePath } from "../../src/ignition/systemd-escape.ts";

/** Unit names for with_mount_unit must be what systemd derives from the path: compared with systemd-escape itself. */
describe("systemdEscapePath against systemd-escape --path", () => {
  const paths = [
    "/",
    "/var/lib/docker",
    "/dev/disk/by-label/my-data",
    "/srv/.hidden/a-b",
    "/mnt/x y",
    "/var//lib/",
    "/.dot",
    "/opt/ünï",
    "/a\\b",
    "/mnt/data_1:2",
  ];
  it("gives the same names", () => {
    const theirs = execFileSync("systemd-escape", ["--path", "--", ...paths], { encoding: "utf8" })
      .trim()
      .split(/\s+/);
    expect(paths.map(systemdEscapePath)).toEqual(theirs);
  });
});
