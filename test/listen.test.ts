import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { explainBindError } from "../src/listen.ts";

const eacces = Object.assign(new Error("bind EACCES"), { code: "EACCES" });

describe("bind errors", () => {
  it("explain a refused low port, and under no_new_privs why the file capability did not help", () => {
    const plain = explainBindError("TFTP", "tftp-port", "0.0.0.0", 69, eacces);
    expect(plain).toBe(
      "TFTP on 0.0.0.0:69: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE (or set --tftp-port to a port above 1023, 0 disables it)",
    );
    const nnp = explainBindError("TFTP", "tftp-port", "0.0.0.0", 69, eacces, true);
    expect(nnp.startsWith(plain)).toBe(true);
    expect(nnp).toContain("no_new_privs (e.g. --security-opt no-new-privileges)");
    expect(nnp).toContain("--user root --cap-drop ALL --cap-add NET_BIND_SERVICE");
  });

  it("read no_new_privs from the process itself (setpriv sets it as Docker's option does)", () => {
    const probe = [
      "--import",
      "tsx",
      "-e",
      `import(${JSON.stringify(join(import.meta.dirname, "..", "src", "listen.ts"))}).then((m) => console.log(m.hasNoNewPrivs()))`,
    ];
    const cwd = join(import.meta.dirname, "..");
    expect(execFileSync(process.execPath, probe, { cwd, encoding: "utf8" }).trim()).toBe("false");
    expect(
      execFileSync("setpriv", ["--no-new-privs", process.execPath, ...probe], { cwd, encoding: "utf8" }).trim(),
    ).toBe("true");
  });
});
