import { describe, expect, it } from "vitest";
import { type BootPlan, flatcarKernelArgs, ipxeKernelArgs, rawKernelArgs } from "../../src/boot/plan.ts";
import {
  bootScript,
  initrdName,
  ipxeScript,
  ipxeText,
  kernelScript,
  localBootScript,
  waitScript,
} from "../../src/boot/render.ts";
import { grubMachineConfig, grubMainConfig, grubWord } from "../../src/boot/render-grub.ts";
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
  it("Flatcar: first_boot set, Ignition URL and consoles", () => {
    expect(
      flatcarKernelArgs({
        ignitionUrl: "http://h/ignition?x=1",
        consoles: ["console=ttyS0"],
        extra: ["flatcar.autologin"],
      }),
    ).toEqual([
      "flatcar.first_boot=1",
      "ignition.config.url=http://h/ignition?x=1",
      "console=ttyS0",
      "flatcar.autologin",
    ]);
  });
  it("raw: the profile's arguments, the signed Ignition URL unless the profile sets one", () => {
    expect(rawKernelArgs({ ignitionUrl: "u", args: ["quiet"] })).toEqual(["quiet", "ignition.config.url=u"]);
    expect(rawKernelArgs({ ignitionUrl: "u", args: ["ignition.config.url=mine"] })).toEqual([
      "ignition.config.url=mine",
    ]);
  });
  it("iPXE names each initrd on the command line unless the profile already does", () => {
    expect(ipxeKernelArgs(["a", "b"], ["quiet"])).toEqual(["initrd=a", "initrd=b", "quiet"]);
    expect(ipxeKernelArgs(["a"], ["initrd=x", "quiet"])).toEqual(["initrd=x", "quiet"]);
  });
});

describe("one plan, two renderers", () => {
  const plan: BootPlan = {
    kind: "kernel",
    comment: "52:54:00:00:00:01 profile e2e",
    kernel: "/assets/flatcar/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz",
    initrds: ["/assets/flatcar/stable/amd64-usr/4593.2.5/flatcar_production_pxe_image.cpio.gz"],
    args: [
      "flatcar.first_boot=1",
      "ignition.config.url=http://10.0.0.1:8080/ignition?mac=52:54:00:00:00:01&exp=9&sig=x",
    ],
  };
  it("iPXE: Kindling paths become URLs on the server, initrds are named for the kernel", () => {
    expect(ipxeScript(plan, "http://10.0.0.1:8080", 30).split("\n")).toEqual([
      "#!ipxe",
      "echo Kindling: 52:54:00:00:00:01 profile e2e",
      "imgfree",
      "kernel http://10.0.0.1:8080/assets/flatcar/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 ignition.config.url=http://10.0.0.1:8080/ignition?mac=52:54:00:00:00:01&exp=9&sig=x",
      "initrd --name flatcar_production_pxe_image.cpio.gz http://10.0.0.1:8080/assets/flatcar/stable/amd64-usr/4593.2.5/flatcar_production_pxe_image.cpio.gz",
      "boot",
      "",
    ]);
  });
  it("iPXE: absolute URLs are used as they are", () => {
    const s = ipxeScript({ ...plan, kernel: "https://mirror/k", initrds: ["https://mirror/i.gz"] }, "http://h", 30);
    expect(s).toContain("kernel https://mirror/k initrd=i.gz ");
    expect(s).toContain("initrd --name i.gz https://mirror/i.gz\n");
  });
  it("GRUB: the same files by TFTP path, arguments quoted, no initrd= names, a pause if boot returns", () => {
    const r = grubMachineConfig(plan, 30);
    expect(r.ok).toBe(true);
    expect(r.ok && r.config.split("\n")).toEqual([
      "echo 'Kindling: 52:54:00:00:00:01 profile e2e'",
      "linux '/assets/flatcar/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz' 'flatcar.first_boot=1' 'ignition.config.url=http://10.0.0.1:8080/ignition?mac=52:54:00:00:00:01&exp=9&sig=x'",
      "initrd '/assets/flatcar/stable/amd64-usr/4593.2.5/flatcar_production_pxe_image.cpio.gz'",
      "boot",
      "echo 'Kindling: boot failed'",
      "echo 'Kindling: asking again in 30 s'",
      "sleep 30",
      "",
    ]);
  });
  it("GRUB: a file outside /assets (or on another server) cannot be fetched and is named", () => {
    const r = grubMachineConfig({ ...plan, initrds: ["https://mirror/i.gz"] }, 30);
    expect(r).toEqual({ ok: false, error: expect.stringContaining("https://mirror/i.gz is not under /assets/") });
    expect(grubMachineConfig({ ...plan, kernel: "/ipxe-bin/k" }, 30).ok).toBe(false);
  });
  it("GRUB: wait pauses and returns to the main config; local leaves GRUB for the firmware", () => {
    expect(grubMachineConfig({ kind: "wait", reason: "no profile" }, 7)).toEqual({
      ok: true,
      config: "echo 'Kindling: no profile'\necho 'Kindling: asking again in 7 s'\nsleep 7\n",
    });
    const local = grubMachineConfig({ kind: "local", reason: "installed" }, 7);
    expect(local.ok && local.config).toBe("echo 'Kindling: installed, booting from local disk'\nexit\n");
  });
  it("GRUB words expand nothing and cannot start a new command", () => {
    expect(grubWord("a'b ${x}; boot\nreboot")).toBe("'a'\\''b ${x}; boot reboot'");
  });
  it("GRUB main config sources the machine's file by the MAC GRUB booted from, in a loop", () => {
    const s = grubMainConfig(30);
    expect(s).toContain("while true; do\n  if source /grub/machines/${net_default_mac}.cfg; then true; else");
    expect(s).toContain("    sleep 30\n");
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
