import { randomBytes } from "node:crypto";
import { mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeAck, encodeError, encodeRequest, Opcode, type Packet } from "../../src/tftp/packet.ts";
import { idle, RawPeer, run, sha256, startServer, tempDir } from "./helpers.ts";

let dir: string;
let root: string;
let cleanup: () => Promise<void>;
const small = randomBytes(512 * 20 + 7); // 21 blocks at 512
const SECRET = "TOP SECRET outside the root";

const rrq = (filename: string, options: Record<string, string> = {}, mode = "octet") =>
  encodeRequest({ op: Opcode.RRQ, filename, mode, options: new Map(Object.entries(options)) });

/** Lock-step download by hand; returns the bytes and every DATA packet seen. */
async function download(peer: RawPeer, port: number, name: string, options: Record<string, string> = {}) {
  peer.send(rrq(name, options), port);
  const chunks: Buffer[] = [];
  const datas: number[] = [];
  let tid: number | undefined;
  let blksize = 512;
  for (;;) {
    const got = await peer.next();
    if (!got) throw new Error("server went silent");
    const { packet, from } = got;
    tid ??= from.port;
    if (packet.op === Opcode.OACK) {
      blksize = Number(packet.options.get("blksize") ?? 512);
      peer.send(encodeAck(0), tid);
      continue;
    }
    if (packet.op !== Opcode.DATA) throw new Error(`unexpected ${JSON.stringify(packet)}`);
    datas.push(packet.block);
    chunks.push(packet.payload);
    peer.send(encodeAck(packet.block), tid);
    if (packet.payload.length < blksize) return { data: Buffer.concat(chunks), datas, tid };
  }
}

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir("tftp-proto"));
  root = join(dir, "root");
  await mkdir(join(root, "sub"), { recursive: true });
  await mkdir(join(dir, "outside"));
  await writeFile(join(root, "small.bin"), small);
  await writeFile(join(root, "sub", "in.txt"), "inside");
  await writeFile(join(dir, "secret.txt"), SECRET);
  await writeFile(join(dir, "outside", "secret.txt"), SECRET);
  await symlink("../secret.txt", join(root, "escape"));
  await symlink(join(dir, "secret.txt"), join(root, "abs-escape"));
  await symlink(join(dir, "outside"), join(root, "outdir"));
  // A package-style link: the owner's own link to the owner's file outside the root. Refused too: Kindling
  // stages package binaries as plain files instead of following links out.
  await mkdir(join(dir, "boot"));
  await writeFile(join(dir, "boot", "loader.efi"), "loader");
  await symlink(join(dir, "boot", "loader.efi"), join(root, "loader.efi"));
});
afterAll(async () => cleanup?.());

describe("protocol rules, checked with a hand-driven peer", () => {
  it("refuses write requests with error 2 and writes nothing", async () => {
    const { server, events } = await startServer([root]);
    const peer = await RawPeer.open();
    try {
      peer.send(encodeRequest({ op: Opcode.WRQ, filename: "new.bin", mode: "octet" }), server.address.port);
      expect((await peer.next())?.packet).toMatchObject({ op: Opcode.ERROR, code: 2 });
      expect(await readdir(root)).not.toContain("new.bin");
      expect(events.of("tftp.failed")[0]?.detail).toMatchObject({ file: "new.bin", op: "write" });
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("answers a stranger on a transfer port with error 5 and carries on", async () => {
    const { server } = await startServer([root], { timeoutMs: 10_000 });
    const client = await RawPeer.open();
    const stranger = await RawPeer.open();
    try {
      client.send(rrq("small.bin"), server.address.port);
      const first = await client.next();
      expect(first?.packet).toMatchObject({ op: Opcode.DATA, block: 1 });
      stranger.send(encodeAck(1), first!.from.port);
      expect((await stranger.next())?.packet).toMatchObject({ op: Opcode.ERROR, code: 5 });
      client.send(encodeAck(1), first!.from.port);
      expect((await client.next())?.packet).toMatchObject({ op: Opcode.DATA, block: 2 });
    } finally {
      client.close();
      stranger.close();
      await server.close();
    }
  });

  it("ends a transfer as soon as its client's port is gone (ICMP port unreachable), not after its retries", async () => {
    // 50 retries with backoff would take over a minute; the connected transfer socket hears the ICMP error
    // on the first retransmission.
    const { server, events } = await startServer([root], { timeoutMs: 100, retries: 50 });
    const client = await RawPeer.open();
    try {
      client.send(rrq("small.bin"), server.address.port);
      expect((await client.next())?.packet).toMatchObject({ op: Opcode.DATA, block: 1 });
      client.close();
      for (let i = 0; i < 100 && events.of("tftp.failed").length === 0; i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(events.of("tftp.failed").map((e) => e.detail?.error)).toEqual([expect.stringMatching(/ECONNREFUSED/)]);
    } finally {
      await server.close();
    }
  });

  it("does not answer duplicate ACKs (no Sorcerer's Apprentice)", async () => {
    // A long timeout so that every DATA seen is an answer to an ACK, not a retransmission.
    const { server } = await startServer([root], { timeoutMs: 30_000, maxIdleMs: 30_000 });
    const peer = await RawPeer.open();
    try {
      peer.send(rrq("small.bin"), server.address.port);
      const seen: number[] = [];
      let last = false;
      // Until the last block, then a quiet spell in which any extra DATA would show up.
      for (let got = await peer.next(); got; got = await peer.next(last ? 300 : 5000)) {
        const p = got.packet as Extract<Packet, { op: 3 }>;
        seen.push(p.block);
        last ||= p.payload.length < 512;
        // Every ACK twice, as a client whose ACK seemed lost would.
        peer.send(encodeAck(p.block), got.from.port);
        peer.send(encodeAck(p.block), got.from.port);
      }
      expect(seen).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("retransmits a bounded number of times, then gives up with an error and an event", async () => {
    const { server, events } = await startServer([root], { timeoutMs: 20, retries: 3 });
    const peer = await RawPeer.open();
    try {
      peer.send(rrq("small.bin"), server.address.port);
      const seen: Packet[] = [];
      for (let got = await peer.next(); got; got = await peer.next(1000)) seen.push(got.packet);
      expect(seen.map((p) => p.op)).toEqual([Opcode.DATA, Opcode.DATA, Opcode.DATA, Opcode.DATA, Opcode.ERROR]);
      expect(events.of("tftp.failed")[0]?.detail).toMatchObject({ file: "small.bin", bytes: 0 });
      expect(server.stats()).toMatchObject({ failed: 1, active: 0 });

      // The same for an unacknowledged OACK.
      peer.send(rrq("small.bin", { blksize: "1024" }), server.address.port);
      const oacks: Packet[] = [];
      for (let got = await peer.next(); got; got = await peer.next(1000)) oacks.push(got.packet);
      expect(oacks.map((p) => p.op)).toEqual([Opcode.OACK, Opcode.OACK, Opcode.OACK, Opcode.OACK, Opcode.ERROR]);
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("treats 'read the OACK, abort, ask again from the same port' as normal", async () => {
    const { server, events } = await startServer([root]);
    const peer = await RawPeer.open();
    try {
      const options = { tsize: "0", blksize: "1432" };
      peer.send(rrq("small.bin", options), server.address.port);
      const oack = await peer.next();
      expect(oack?.packet).toEqual({
        op: Opcode.OACK,
        options: new Map([
          ["blksize", "1432"],
          ["tsize", String(small.length)],
        ]),
      });
      // What PXE ROMs do: ERROR to the OACK and straight away the same request from the same port.
      peer.send(encodeError(0, "tsize probe done"), oack!.from.port);
      const { data, tid } = await download(peer, server.address.port, "small.bin", options);
      expect(data.equals(small)).toBe(true);
      expect(tid).not.toBe(oack!.from.port);
      await idle(server);
      expect(events.of("tftp.aborted")).toHaveLength(1);
      expect(events.of("tftp.transfer")).toHaveLength(1);
      expect(server.stats()).toMatchObject({ transfers: 1, failed: 0 });
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("ignores a repeated request mid-transfer; a different one from the same port starts afresh", async () => {
    const { server } = await startServer([root], { timeoutMs: 10_000 });
    const peer = await RawPeer.open();
    try {
      peer.send(rrq("small.bin"), server.address.port);
      const one = await peer.next();
      peer.send(encodeAck(1), one!.from.port);
      expect((await peer.next())?.packet).toMatchObject({ op: Opcode.DATA, block: 2 });
      // A late duplicate of the request, as a network may deliver: no second transfer, no disturbance.
      peer.send(rrq("small.bin"), server.address.port);
      peer.send(encodeAck(2), one!.from.port);
      const three = await peer.next();
      expect(three?.packet).toMatchObject({ op: Opcode.DATA, block: 3 });
      expect(three?.from.port).toBe(one!.from.port);
      expect(await peer.next(100)).toBeUndefined();
      expect(server.stats().active).toBe(1);

      // The client starts over with another file from the same port: the old transfer yields.
      const { data, tid } = await download(peer, server.address.port, "sub/in.txt");
      expect(data.toString()).toBe("inside");
      expect(tid).not.toBe(one!.from.port);
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("drops requests beyond maxTransfers, so the client retries later", async () => {
    const { server } = await startServer([root], { maxTransfers: 1, timeoutMs: 10_000 });
    const first = await RawPeer.open();
    const second = await RawPeer.open();
    try {
      first.send(rrq("small.bin"), server.address.port);
      const data = await first.next();
      expect(data?.packet).toMatchObject({ op: Opcode.DATA, block: 1 });
      second.send(rrq("small.bin"), server.address.port);
      expect(await second.next(200)).toBeUndefined();
      // The first client gives up; its slot frees and the second one's retry is served.
      first.send(encodeError(0, "bye"), data!.from.port);
      await idle(server);
      const { data: bytes } = await download(second, server.address.port, "small.bin");
      expect(bytes.equals(small)).toBe(true);
    } finally {
      first.close();
      second.close();
      await server.close();
    }
  });

  it("ignores absurd option values and falls back to RFC 1350", async () => {
    const { server } = await startServer([root]);
    const peer = await RawPeer.open();
    try {
      const absurd = {
        blksize: "0",
        windowsize: "99999999999999999999",
        timeout: "-5",
        tsize: "x",
        "": "y",
        bogus: "1",
      };
      const { data, datas } = await download(peer, server.address.port, "small.bin", absurd);
      expect(data.equals(small)).toBe(true);
      expect(datas).toHaveLength(21);
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("lets a running transfer finish within the close grace, and ends it without", async () => {
    const { server, events } = await startServer([root], { timeoutMs: 10_000 });
    const peer = await RawPeer.open();
    try {
      peer.send(rrq("small.bin"), server.address.port);
      const first = await peer.next();
      const closed = server.close(30_000);
      const rest = [first!.packet as Extract<Packet, { op: 3 }>];
      peer.send(encodeAck(1), first!.from.port);
      for (let got = await peer.next(); got; got = rest.at(-1)!.payload.length < 512 ? undefined : await peer.next()) {
        rest.push(got.packet as Extract<Packet, { op: 3 }>);
        peer.send(encodeAck(rest.at(-1)!.block), got.from.port);
      }
      await closed;
      expect(Buffer.concat(rest.map((p) => p.payload)).equals(small)).toBe(true);
      expect(events.of("tftp.transfer")).toHaveLength(1);
    } finally {
      peer.close();
    }

    const second = await startServer([root], { timeoutMs: 10_000 });
    const peer2 = await RawPeer.open();
    try {
      peer2.send(rrq("small.bin"), second.server.address.port);
      expect((await peer2.next())?.packet).toMatchObject({ op: Opcode.DATA, block: 1 });
      await second.server.close(0);
      expect((await peer2.next())?.packet).toMatchObject({ op: Opcode.ERROR, message: "server shutting down" });
      expect(second.events.of("tftp.failed")).toHaveLength(1);
    } finally {
      peer2.close();
    }
  });
});

describe("hostile file names", () => {
  const hostile = [
    "../secret.txt",
    "/../secret.txt",
    "..\\secret.txt",
    "sub/../../secret.txt",
    "./../secret.txt",
    "sub\\..\\..\\secret.txt",
    "escape",
    "abs-escape",
    "outdir/secret.txt",
    "%2e%2e/secret.txt",
    "..%2fsecret.txt",
    "/etc/passwd",
    "C:\\..\\secret.txt",
    `${"a/".repeat(3000)}x`,
    "/",
    "sub",
  ];
  it.each(hostile.map((n) => [n.length > 40 ? `${n.slice(0, 40)}…` : n, n]))("refuses %j", async (_label, name) => {
    const { server } = await startServer([root]);
    const peer = await RawPeer.open();
    try {
      peer.send(rrq(name), server.address.port);
      const got = await peer.next();
      expect(got?.packet.op).toBe(Opcode.ERROR);
      expect([1, 2]).toContain((got!.packet as { code: number }).code);
      expect(await peer.next(100)).toBeUndefined();
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("refuses a NUL inside the name (the rest becomes a bogus mode) and serves nothing", async () => {
    const { server } = await startServer([root]);
    const peer = await RawPeer.open();
    try {
      peer.send(Buffer.from("\0\x01sub/in.txt\0../secret.txt\0octet\0", "latin1"), server.address.port);
      expect((await peer.next())?.packet).toMatchObject({ op: Opcode.ERROR, code: 4 });
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("refuses a link out of the root even when its target's owner made it (like Debian's ipxe.efi → /boot)", async () => {
    const { server } = await startServer([root]);
    const peer = await RawPeer.open();
    try {
      peer.send(encodeRequest({ op: Opcode.RRQ, filename: "loader.efi", mode: "octet" }), server.address.port);
      expect((await peer.next())?.packet).toMatchObject({ op: Opcode.ERROR, code: 2 });
    } finally {
      peer.close();
      await server.close();
    }
  });

  it("still serves a file inside the root by a leading-slash, backslash and ./ spelling", async () => {
    const { server } = await startServer([root]);
    const peer = await RawPeer.open();
    try {
      for (const name of ["/sub/in.txt", "\\sub\\in.txt", "./sub/./in.txt"]) {
        const { data } = await download(peer, server.address.port, name);
        expect(data.toString()).toBe("inside");
      }
    } finally {
      peer.close();
      await server.close();
    }
  });
});

describe("garbage", () => {
  it("drops or answers garbage, counts it, and keeps serving", async () => {
    const { server, port } = await startServer([root], { timeoutMs: 10_000 });
    const peer = await RawPeer.open();
    const victim = await RawPeer.open();
    try {
      // A transfer in flight, to throw garbage at its port too.
      victim.send(rrq("small.bin"), port);
      const first = await victim.next();
      expect(first?.packet).toMatchObject({ op: Opcode.DATA, block: 1 });

      const crafted = [
        "",
        "\x01",
        "\0\0",
        "\0\x07x\0",
        "\0\xff",
        "\xff\xff\xff\xff",
        "\0\x01file",
        "\0\x01file\0",
        "\0\x01\0octet\0",
        "\0\x01small.bin\0octet\0blksize\0",
        "\0\x01small.bin\0octet\0blksize\x001",
        "\0\x04",
        "\0\x03\0",
      ].map((s) => Buffer.from(s, "latin1"));
      let seed = 7;
      const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
      const random = Array.from({ length: 300 }, () =>
        Buffer.from(Array.from({ length: rand() % 600 }, () => rand() & 0xff)),
      );
      const all = [...crafted, ...random];
      // In small bursts: a flood bigger than the socket buffer would only measure the kernel's drops.
      for (let i = 0; i < all.length; i += 16) {
        for (const buf of all.slice(i, i + 16)) peer.send(buf, port);
        await new Promise((r) => setTimeout(r, 1));
      }
      // Garbage from the victim's own TID: dropped without ending its transfer.
      for (const buf of crafted) victim.send(buf, first!.from.port);

      // The server still serves a real client, and the victim's transfer goes on.
      const local = join(dir, "after-garbage.bin");
      await run("curl", ["-sS", "-o", local, `tftp://127.0.0.1:${port}/small.bin`]);
      expect(await sha256(local)).toBe(await sha256(join(root, "small.bin")));
      victim.send(encodeAck(1), first!.from.port);
      let next = await victim.next();
      while (next && next.packet.op !== Opcode.DATA) next = await victim.next();
      expect(next?.packet).toMatchObject({ op: Opcode.DATA, block: 2 });
      expect(server.stats().malformed).toBeGreaterThanOrEqual(crafted.length);
    } finally {
      peer.close();
      victim.close();
      await server.close();
    }
  });
});
