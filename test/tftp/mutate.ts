/**
 * Seeded hostile TFTP packets for the fuzz test: requests with odd, duplicate and oversized options and
 * names, writes, stray DATA/ACK/ERROR/OACK, truncations, bit flips and plain garbage. Pure: the same seed
 * gives the same packets.
 */
import { encodeAck, encodeData, encodeError, encodeOack, encodeRequest, Opcode } from "../../src/tftp/packet.ts";

export type Rand = () => number;

export class Mutator {
  constructor(
    private readonly rand: Rand,
    /** Names that exist on the server, so some requests start real transfers. */
    private readonly files: string[],
  ) {}

  int(max: number): number {
    return Math.floor(this.rand() * max);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  chance(p: number): boolean {
    return this.rand() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A packet for the listening port. */
  forServer(): Buffer {
    const r = this.rand();
    if (r < 0.35) return this.request(Opcode.RRQ);
    if (r < 0.4) return this.request(Opcode.WRQ);
    if (r < 0.55) return this.stray();
    if (r < 0.75) return this.truncate(this.request(Opcode.RRQ));
    if (r < 0.9) return this.flip(this.request(Opcode.RRQ));
    return this.garbage();
  }

  /** A packet for a transfer's port, from its client or from a stranger. */
  forTransfer(): Buffer {
    const r = this.rand();
    if (r < 0.6) return this.stray();
    if (r < 0.7) return this.request(Opcode.RRQ);
    if (r < 0.85) return this.truncate(this.stray());
    return this.garbage();
  }

  /** What a client might answer to `block` (OACK = block 0): mostly right, sometimes not. */
  answer(block: number): Buffer {
    const r = this.rand();
    if (r < 0.75) return encodeAck(block);
    if (r < 0.85) return encodeAck(block - 1 - this.int(3));
    if (r < 0.9) return encodeAck(block + 1 + this.int(100));
    if (r < 0.95) return encodeError(this.int(9), "client says no");
    return this.stray();
  }

  private name(): string {
    const r = this.rand();
    if (r < 0.5) return this.pick(this.files);
    if (r < 0.6) return `/${this.pick(this.files)}`;
    if (r < 0.65) return `..\\..\\${this.pick(["etc/passwd", "x"])}`;
    if (r < 0.7) return `${"../".repeat(1 + this.int(50))}etc/shadow`;
    if (r < 0.75) return "a".repeat(1 + this.int(60_000));
    if (r < 0.8) return this.pick(["", ".", "./", "//", "\\", "sub/", "%2e%2e/x", "nope"]);
    return this.bytes(1 + this.int(40))
      .toString("latin1")
      .replaceAll("\0", "_");
  }

  private option(): [string, string] {
    const names = ["blksize", "tsize", "timeout", "windowsize", "BLKSIZE", "TimeOut", "rollover", "multicast", "x"];
    const values = [
      "0",
      "1",
      "7",
      "8",
      "512",
      "1468",
      "65464",
      "65465",
      "255",
      "256",
      "-1",
      "1e3",
      "",
      " 8",
      "99999999999999999999",
    ];
    const name = this.chance(0.9) ? this.pick(names) : this.bytes(this.int(20)).toString("latin1").replaceAll("\0", "");
    const value = this.chance(0.05)
      ? "9".repeat(this.int(40_000))
      : this.chance(0.85)
        ? this.pick(values)
        : String(this.int(70_000));
    return [name, value];
  }

  private request(op: typeof Opcode.RRQ | typeof Opcode.WRQ): Buffer {
    if (op === Opcode.RRQ && this.chance(0.02))
      return encodeRequest({ op, filename: this.pick(this.files), mode: "octet" });
    const mode = this.chance(0.8)
      ? this.pick(["octet", "netascii"])
      : this.pick(["OCTET", "NetAscii", "mail", "", "binary"]);
    // Built by hand so that it can be odd: duplicate options, a dangling name, no final NUL, 64 KB long.
    const parts = [this.name(), mode];
    let size = parts[0]!.length;
    const n = this.chance(0.3) ? 0 : this.int(this.chance(0.05) ? 2000 : 6);
    for (let i = 0; i < n && size < 65_000; i++) {
      const o = this.option();
      parts.push(...o);
      size += o[0].length + o[1].length + 2;
    }
    if (this.chance(0.05)) parts.push("dangling");
    const body = Buffer.from(parts.map((p) => `${p}\0`).join(""), "latin1");
    const full = Buffer.concat([Buffer.from([0, op]), body]).subarray(0, 65_000);
    return this.chance(0.03) ? full.subarray(0, full.length - 1) : full;
  }

  private stray(): Buffer {
    switch (this.int(5)) {
      case 0:
        return encodeAck(this.int(65536));
      case 1:
        return encodeData(this.int(65536), this.bytes(this.pick([0, 1, 511, 512, 513, 1468])));
      case 2:
        return encodeError(this.int(65536), this.bytes(this.int(100)).toString("latin1"));
      case 3:
        return encodeOack(new Map([this.option(), this.option()]));
      default: {
        // An opcode outside 1..6, or a padded ACK.
        const b = this.bytes(2 + this.int(10));
        b.writeUInt16BE(this.chance(0.5) ? this.int(65536) : Opcode.ACK, 0);
        return b;
      }
    }
  }

  private truncate(b: Buffer): Buffer {
    return b.subarray(0, this.int(b.length + 1));
  }

  private flip(b: Buffer): Buffer {
    const out = Buffer.from(b);
    for (let i = 1 + this.int(4); i > 0 && out.length > 0; i--) out[this.int(out.length)]! ^= 1 << this.int(8);
    return out;
  }

  private garbage(): Buffer {
    const n = this.chance(0.02) ? this.int(65_000) : this.int(this.chance(0.1) ? 4 : 1500);
    return this.bytes(n);
  }
}
