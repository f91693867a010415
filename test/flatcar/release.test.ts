import { describe, expect, it } from "vitest";
import { maxIgnitionSpec } from "../../src/flatcar/ignition-spec.ts";
import { formatBytes, formatDuration, ProgressReporter, renderLine } from "../../src/flatcar/progress.ts";
import {
  compareVersions,
  originBase,
  parseVersionTxt,
  releaseFiles,
  signatureNames,
  upstreamChannel,
} from "../../src/flatcar/release.ts";

describe("maxIgnitionSpec", () => {
  it.each([
    ["3033.3.18", null],
    ["3184.0.0", null],
    ["3185.0.0", "3.3.0"],
    ["3510.3.6", "3.3.0"],
    ["3510.2.8", "3.3.0"],
    ["3534.0.0", "3.3.0"],
    ["3535.0.0", "3.4.0"],
    ["3602.2.0", "3.4.0"],
    ["3975.2.0", "3.4.0"],
    ["4081.3.9", "3.4.0"],
    ["4151.0.0", "3.4.0"],
    ["4152.2.0", "3.5.0"],
    ["4593.2.5", "3.5.0"],
  ])("%s → %s", (version, spec) => {
    expect(maxIgnitionSpec(version)).toBe(spec);
  });
  it("rejects what is not a version", () => {
    expect(() => maxIgnitionSpec("current")).toThrow(/not a Flatcar version/);
  });
});

describe("release helpers", () => {
  it("parses version.txt as published (quotes, CRLF, other keys)", () => {
    expect(
      parseVersionTxt('FLATCAR_BUILD=4593\r\nFLATCAR_VERSION="4593.2.5"\r\nFLATCAR_SDK_VERSION=4593.0.0\r\n'),
    ).toBe("4593.2.5");
    expect(() => parseVersionTxt("<html>moved</html>")).toThrow(/no FLATCAR_VERSION/);
    expect(() => parseVersionTxt("FLATCAR_VERSION=../../etc\n")).toThrow(/not a release number/);
  });

  it("orders versions numerically", () => {
    expect(["4593.2.10", "4593.2.5", "4081.3.9", "4600.0.0"].sort(compareVersions)).toEqual([
      "4081.3.9",
      "4593.2.5",
      "4593.2.10",
      "4600.0.0",
    ]);
  });

  it("maps LTS streams onto the lts channel and their own current pointer", () => {
    expect(upstreamChannel("lts-2024")).toEqual({ channel: "lts", currentDir: "current-2024" });
    expect(upstreamChannel("stable")).toEqual({ channel: "stable", currentDir: "current" });
    expect(originBase("https://{channel}.release.flatcar-linux.net/{board}/", "lts-2023", "arm64")).toBe(
      "https://lts.release.flatcar-linux.net/arm64-usr",
    );
  });

  it("lists the signed files, OEM images last, and the kernel's fallback signature", () => {
    expect(releaseFiles(["vmware_raw"])).toEqual([
      "flatcar_production_pxe.vmlinuz",
      "flatcar_production_pxe_image.cpio.gz",
      "flatcar_production_image.bin.bz2",
      "flatcar_production_vmware_raw_image.bin.bz2",
    ]);
    expect(signatureNames("flatcar_production_pxe.vmlinuz")).toEqual([
      "flatcar_production_pxe.vmlinuz.sig",
      "flatcar_production_image.vmlinuz.sig",
    ]);
  });
});

describe("progress", () => {
  it("formats sizes, durations and a line with bar and ETA", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5.0 MiB");
    expect(formatDuration(75)).toBe("1:15");
    expect(formatDuration(3725)).toBe("1:02:05");
    expect(renderLine({ file: "f", bytes: 25, total: 100, rate: 25 }, 8)).toBe(
      "f [##......]  25% 25 B/100 B 25 B/s ETA 0:03",
    );
    expect(renderLine({ file: "f", bytes: 25, rate: 0 })).toBe("f 25 B 0 B/s");
  });

  it("redraws one line on a terminal and writes plain lines elsewhere", () => {
    let t = 0;
    const tty = { text: "", isTTY: true, columns: 100, write: (s: string) => (tty.text += s) };
    const r = new ProgressReporter(tty, () => t);
    for (const b of [0, 50, 100]) {
      t += 1000;
      r.update({ file: "a", bytes: b, total: 100 });
    }
    r.finishFile();
    expect(tty.text.split("\r\x1b[K").filter(Boolean)).toHaveLength(3);
    expect(tty.text.endsWith("100% 100 B/100 B 50 B/s ETA 0:00\n")).toBe(true);

    t = 0;
    const pipe = { text: "", write: (s: string) => (pipe.text += s) };
    const p = new ProgressReporter(pipe, () => t, 10_000);
    for (let b = 0; b <= 100; b += 10) {
      t += 1000;
      p.update({ file: "b", bytes: b, total: 100 });
    }
    p.update({ file: "c", bytes: 0, total: 10 });
    p.finishFile();
    expect(pipe.text).not.toContain("\r");
    expect(pipe.text.trim().split("\n")).toEqual([
      "b   0% 0 B/100 B 0 B/s ETA --:--",
      "b 100% 100 B/100 B 10 B/s ETA 0:00",
      "c   0% 0 B/10 B 0 B/s ETA --:--",
      "c   0% 0 B/10 B 0 B/s ETA --:--",
    ]);
  });
});
