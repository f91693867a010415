import type { Netns } from "../../e2e/rig/netns.ts";

/**
 * The QEMU command line of a BIOS machine a BMC simulator powers: SeaBIOS with the e1000's iPXE ROM first in
 * the boot order (as Kindling asks machines to be set up), a disk second, the serial console appended to a file
 * across power-ons, and whatever the BMC needs (`extra`: the IPMI devices, or a QMP socket).
 */
export function guestArgs(opts: {
  ns: Netns;
  mac: string;
  disk: string;
  serialLog: string;
  extra: string[];
}): string[] {
  return [
    "qemu-system-x86_64",
    "-machine",
    "pc,accel=tcg",
    "-m",
    "512",
    "-smp",
    "1",
    // -nographic also turns on SeaBIOS's serial console (its and iPXE's messages reach the log).
    "-nographic",
    "-monitor",
    "none",
    "-chardev",
    `file,id=serial0,path=${opts.serialLog},append=on`,
    "-serial",
    "chardev:serial0",
    "-netdev",
    `tap,id=n0,ifname=${opts.ns.tap},script=no,downscript=no`,
    "-device",
    `e1000,netdev=n0,mac=${opts.mac},bootindex=1`,
    "-drive",
    `file=${opts.disk},format=raw,if=none,id=d0`,
    "-device",
    "ide-hd,drive=d0,bootindex=2",
    ...opts.extra,
  ];
}

/** A POSIX shell word: the simulators start the guest through a script. */
export const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
