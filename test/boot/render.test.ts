import { describe, expect, it } from "vitest";
import { flatcarKernelArgs, rawKernelArgs } from "../../src/boot/plan.ts";
import { bootScript, initrdName, ipxeText, kernelScript, localBootScript, waitScript } from "../../src/boot/render.ts";
import { Signer } from "../../src/boot/sign.ts";
import { expandKernelArg, TemplateError } from "../../src/boot/template.ts";

describe("iPXE scripts", () => {
  it("boot.ipxe chains to /ipxe with every identity variable iPXE knows", () => {
    const s = bootScript("http://10.0.0.1:8080");
    expect(s.startsWith("#!ipxe\n")).toBe(true);
    expect(s).toContain(
      "chain --autofree http://10.0.0.1:8080/ipxe?mac=${mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}",
    );
    expect(s).toContain("&arch=${buildarch}&platform=${platform}");
  });

  it("kernel script frees earlier images, names each initrd and boots", () => {
    const s = kernelScript({
      comment: "x",
      kernel: "http://h/k",
      initrds: [{ name: "a.cpio.gz", url: "http://h/a.cpio.gz" }],
      args: ["initrd=a.cpio.gz", "quiet"],
    });
    expect(s.split("\n")).toEqual([
      "#!ipxe",
      "echo Kindling: x",
      "imgfree",
      "kernel http://h/k initrd=a.cpio.gz quiet",
      "initrd --name a.cpio.gz http://h/a.cpio.gz",
      "boot",
      "",
    ]);
  });

  it("wait script sleeps and re-asks without stacking scripts", () => {
    const s = waitScript("unknown", 30, "http://h:8080");
    expect(s).toContain("sleep 30\n");
    expect(s).toContain("chain --replace --autofree http://h:8080/boot.ipxe");
  });

  it("local boot exits on UEFI and falls back to sanboot of the first disk on BIOS", () => {
    const s = localBootScript("installed");
    expect(s).toContain("iseq ${platform} efi && exit ||");
    expect(s).toContain("sanboot --no-describe --drive 0x80 || exit");
  });

  it("echo text cannot expand variables or chain commands", () => {
    expect(ipxeText("a ${mac} || b && c\nshell")).toBe("a $ {mac}   b   c shell");
  });

  it("initrd names are the last path segment", () => {
    expect(initrdName("http://h/x/flatcar_production_pxe_image.cpio.gz?a=b")).toBe(
      "flatcar_production_pxe_image.cpio.gz",
    );
  });
});

describe("kernel arguments", () => {
  it("Flatcar: initrd= equals the iPXE image name, first_boot set, Ignition URL and consoles", () => {
    expect(
      flatcarKernelArgs({
        initrdName: "flatcar_production_pxe_image.cpio.gz",
        ignitionUrl: "http://h/ignition?x=1",
        consoles: ["console=ttyS0"],
        extra: ["flatcar.autologin"],
      }),
    ).toEqual([
      "initrd=flatcar_production_pxe_image.cpio.gz",
      "flatcar.first_boot=1",
      "ignition.config.url=http://h/ignition?x=1",
      "console=ttyS0",
      "flatcar.autologin",
    ]);
  });
  it("raw: names each initrd unless the profile already does", () => {
    expect(rawKernelArgs({ initrdNames: ["a", "b"], ignitionUrl: undefined, args: ["quiet"] })).toEqual([
      "initrd=a",
      "initrd=b",
      "quiet",
    ]);
    expect(rawKernelArgs({ initrdNames: ["a"], ignitionUrl: "u", args: ["initrd=x"] })).toEqual([
      "initrd=x",
      "ignition.config.url=u",
    ]);
  });
});

describe("kernel argument templates", () => {
  const values = {
    hostname: "node1",
    serial: "SN 1",
    metadata: { rack: "a1", n: 3, evil: "x ignition.config.url=http://evil" },
  };
  it("substitutes dotted references", () => expect(expandKernelArg("rack={{metadata.rack}}", values)).toBe("rack=a1"));
  it("names a missing reference", () => {
    expect(() => expandKernelArg("x={{ metadata.nope }}", values)).toThrow(TemplateError);
    expect(() => expandKernelArg("x={{ metadata.nope }}", values)).toThrow(/metadata\.nope/);
  });
  it("does not reach into prototypes", () =>
    expect(() => expandKernelArg("{{ constructor }}", values)).toThrow(TemplateError));
  it("refuses a value that would split the command line into extra arguments", () => {
    expect(() => expandKernelArg("serial={{ serial }}", values)).toThrow(/whitespace/);
    expect(() => expandKernelArg("x={{ metadata.evil }}", values)).toThrow(/metadata\.evil/);
  });
});

describe("signed URLs", () => {
  const s = new Signer(Buffer.alloc(32, 7));
  const now = Date.UTC(2026, 0, 1);
  const q = new URLSearchParams(s.query("ignition", "52:54:00:00:00:01", 60, now));
  it("verifies its own signature until it expires", () => {
    expect(s.verify("ignition", "52:54:00:00:00:01", q.get("exp")!, q.get("sig")!, now)).toBe("ok");
    expect(s.verify("ignition", "52:54:00:00:00:01", q.get("exp")!, q.get("sig")!, now + 61_000)).toBe("expired");
  });
  it("refuses another MAC, another purpose, a tampered expiry, another key", () => {
    expect(s.verify("ignition", "52:54:00:00:00:02", q.get("exp")!, q.get("sig")!, now)).toBe("invalid");
    expect(s.verify("report", "52:54:00:00:00:01", q.get("exp")!, q.get("sig")!, now)).toBe("invalid");
    expect(s.verify("ignition", "52:54:00:00:00:01", String(Number(q.get("exp")) + 1000), q.get("sig")!, now)).toBe(
      "invalid",
    );
    expect(
      new Signer(Buffer.alloc(32, 8)).verify("ignition", "52:54:00:00:00:01", q.get("exp")!, q.get("sig")!, now),
    ).toBe("invalid");
    expect(s.verify("ignition", "52:54:00:00:00:01", undefined, undefined, now)).toBe("invalid");
  });
});
