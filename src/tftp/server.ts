import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import { CoalescedLog } from "../limits/coalesce.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import { literalLookup } from "../net/literal-lookup.ts";
import { Slots } from "./admission.ts";
import { type BlockSource, bufferBlocks, handleBlocks, toNetascii } from "./blocks.ts";
import type { TftpConfig } from "./config.ts";
import { FileAccessError, FileCatalog, type Opened } from "./files.ts";
import { negotiate } from "./options.ts";
import { decode, ErrorCode, encodeError, MalformedPacket, Opcode, type Packet, type Request } from "./packet.ts";
import { type Datagram, type Outcome, Session } from "./session.ts";

export interface TftpServerOptions {
  /** `port: 0` binds an ephemeral port (tests, bench); the lead's start-up treats 0 as "disabled" before calling this. */
  config: TftpConfig;
  roots: string[];
  events: EventSink;
  log: Logger;
}

export interface TftpStats {
  /** Transfers that completed. */
  transfers: number;
  /** Requests refused and transfers that failed (client PXE aborts after the OACK are not failures). */
  failed: number;
  /** Payload bytes acknowledged by clients. */
  bytes: number;
  /** Undecodable or out-of-place packets, dropped or answered with error 4/5. */
  malformed: number;
  /** Requests dropped unanswered because their client, or the server, had no slot free. */
  dropped: number;
  /** Stalled transfers ended to make room for a new request (see admission.ts). */
  evicted: number;
  active: number;
}

interface Transfer {
  /** The client's IP: slots are counted per client. */
  client: string;
  /** The request as received, to recognise a client's retransmitted RRQ. */
  request: Buffer;
  file: string;
  options: Record<string, string>;
  startedAt: number;
  session?: Session;
  /** A repeat of this request is waiting to be judged (see onRead). */
  retried?: boolean;
  /** Ended to make room for another request: counted, not recorded as an event (a flood would write one per packet). */
  evicted?: boolean;
}

/** A transfer still opening its file has no session yet and cannot be judged stalled. */
const overdue = (now: number) => (t: Transfer) => t.session?.overdueMs(now) ?? -1;

/** Every address this server sends to is an IP literal: resolve it at once, not on dns.lookup's next tick. */
function udpSocket(host: string, reuseAddr = false): Socket {
  return createSocket({ type: isIPv6(host) ? "udp6" : "udp4", lookup: literalLookup, reuseAddr });
}

function closeQuietly(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // Already torn down by the error that ended the transfer.
  }
}

const MODES = new Set(["octet", "netascii"]);
/** Read-ahead per streamed transfer, in blocks; at least a few windows so reads overlap sending. */
const CHUNK_MIN_BYTES = 256 * 1024;

/** Kindling's read-only TFTP server: one listening socket, one ephemeral socket per transfer. */
export class TftpServer {
  private readonly transfers = new Map<string, Transfer>();
  private readonly slots: Slots<Transfer>;
  private readonly catalog: FileCatalog;
  private readonly counters = { transfers: 0, failed: 0, bytes: 0, malformed: 0, dropped: 0, evicted: 0 };
  private closing = false;
  private busyWarnedAt = 0;
  /** Refused requests become counted, clipped events: a flood of them must not grow the database. */
  private readonly refusals: CoalescedLog;
  readonly address: { host: string; port: number };

  private constructor(
    private readonly socket: Socket,
    private readonly opts: TftpServerOptions,
  ) {
    const { address, port } = socket.address();
    this.address = { host: address, port };
    this.catalog = new FileCatalog(opts.roots, opts.config);
    this.slots = new Slots(opts.config);
    this.refusals = new CoalescedLog({ events: opts.events, log: opts.log });
    socket.on("message", (msg, rinfo) => this.onRequest(msg, rinfo));
    socket.on("error", (err) => opts.log.error({ err }, "tftp listener error"));
  }

  static async start(opts: TftpServerOptions): Promise<TftpServer> {
    const { host, port } = opts.config;
    const socket = udpSocket(host);
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    const server = new TftpServer(socket, opts);
    opts.log.info({ host: server.address.host, port: server.address.port, roots: opts.roots }, "tftp listening");
    return server;
  }

  stats(): TftpStats {
    return { ...this.counters, active: this.slots.size };
  }

  /** Stops taking requests, lets running transfers finish for up to `graceMs`, then ends the rest. */
  async close(graceMs = 0): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    while (this.transfers.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const t of this.transfers.values()) t.session?.abort("server shutting down");
    // Requests still opening their file finish (and are refused) on their own; wait for them.
    while (this.transfers.size > 0) await new Promise((r) => setTimeout(r, 5));
    this.refusals.close();
  }

  private onRequest(msg: Buffer, rinfo: RemoteInfo): void {
    // Source port 0 is forged (and Node refuses to send to it): nothing to answer.
    if (rinfo.port === 0) {
      this.counters.malformed++;
      return;
    }
    let packet: Packet;
    try {
      packet = decode(msg);
    } catch (err) {
      this.counters.malformed++;
      const reason = err instanceof MalformedPacket ? err.message : "undecodable packet";
      this.opts.log.debug({ client: rinfo.address, reason }, "tftp malformed packet");
      this.socket.send(encodeError(ErrorCode.ILLEGAL_OPERATION, reason), rinfo.port, rinfo.address);
      return;
    }
    if (packet.op === Opcode.RRQ) return this.onRead(packet, msg, rinfo);
    if (packet.op === Opcode.WRQ) {
      this.refuse(rinfo, packet, new FileAccessError(ErrorCode.ACCESS_VIOLATION, "read-only server: writes refused"));
      return;
    }
    // DATA/ACK/OACK on the request port belong to no transfer; never answer an ERROR (no error ping-pong).
    this.counters.malformed++;
    if (packet.op !== Opcode.ERROR) {
      this.socket.send(encodeError(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), rinfo.port, rinfo.address);
    }
  }

  private onRead(req: Request, raw: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = this.transfers.get(key);
    if (existing) {
      if (existing.request.equals(raw)) {
        // Either a duplicate (the client repeating a request it has no answer to yet, or the network
        // repeating a packet): the running transfer goes on. Or a PXE ROM that sent ERROR to our OACK
        // and asks again from the same port, with that ERROR not yet read from the transfer socket.
        // Decide once this poll round is handled.
        if (existing.retried) return;
        existing.retried = true;
        setImmediate(() => {
          existing.retried = false;
          if (!this.closing && !this.transfers.has(key)) this.onRead(req, raw, rinfo);
        });
        return;
      }
      // Not notified: an error from the old TID could be taken as the answer to the new request.
      existing.session?.abort("superseded by a new request from the same port", false);
      this.release(key, existing);
    }
    const decision = this.slots.decide(rinfo.address, overdue(performance.now()));
    if (!decision.admit) {
      this.counters.dropped++;
      // Once a second at most: a flood must not turn into a log flood.
      if (Date.now() - this.busyWarnedAt > 1000) {
        this.busyWarnedAt = Date.now();
        const cap = decision.full === "client" ? "maxTransfersPerClient" : "maxTransfers";
        this.opts.log.warn(
          { client: rinfo.address, active: this.slots.size, dropped: this.counters.dropped },
          `tftp busy (${cap}), requests dropped`,
        );
      }
      return;
    }
    if (decision.evict) {
      decision.evict.evicted = true;
      decision.evict.session?.abort("stalled transfer ended to make room for a new request");
    }
    if (!MODES.has(req.mode)) {
      this.refuse(
        rinfo,
        req,
        new FileAccessError(ErrorCode.ACCESS_VIOLATION, `unsupported mode ${req.mode}`),
        ErrorCode.ILLEGAL_OPERATION,
      );
      return;
    }
    const transfer: Transfer = {
      client: rinfo.address,
      request: raw,
      file: req.filename,
      options: Object.fromEntries(req.options),
      startedAt: performance.now(),
    };
    this.transfers.set(key, transfer);
    this.slots.add(transfer.client, transfer);
    this.catalog.open(req.filename).then(
      (opened) => {
        try {
          this.begin(key, transfer, req, opened, rinfo);
        } catch (err) {
          // Out of sockets or similar: this request fails, the server goes on.
          this.release(key, transfer);
          if ("handle" in opened) void opened.handle.close().catch(() => {});
          this.opts.log.error({ err, file: req.filename }, "tftp transfer could not start");
          this.refuse(
            rinfo,
            req,
            new FileAccessError(ErrorCode.ACCESS_VIOLATION, "server cannot start the transfer"),
            ErrorCode.NOT_DEFINED,
          );
        }
      },
      (err: unknown) => {
        this.release(key, transfer);
        if (err instanceof FileAccessError) return this.refuse(rinfo, req, err);
        this.opts.log.error({ err, file: req.filename }, "tftp open failed");
        this.refuse(rinfo, req, new FileAccessError(ErrorCode.ACCESS_VIOLATION, "cannot read file"));
      },
    );
  }

  private begin(key: string, transfer: Transfer, req: Request, opened: Opened, rinfo: RemoteInfo): void {
    const { config } = this.opts;
    const netascii = req.mode === "netascii";
    // tsize would be the on-disk size, not what netascii puts on the wire, so it is not offered there.
    const n = negotiate(req.options, config, netascii ? undefined : opened.size);
    let source: BlockSource;
    if ("content" in opened) source = bufferBlocks(netascii ? toNetascii(opened.content) : opened.content, n.blksize);
    else {
      const chunk = n.blksize * Math.max(4 * n.windowsize, Math.ceil(CHUNK_MIN_BYTES / n.blksize));
      source = handleBlocks(opened.handle, n.blksize, chunk, netascii ? toNetascii : undefined);
    }
    if (this.closing || this.transfers.get(key) !== transfer) {
      void source.close().catch(() => {});
      this.release(key, transfer);
      return;
    }
    // Two sockets share the transfer's port (its TID). `client` is connected to the client: it alone gets the
    // client's packets and sends everything, with no address to check or route to look up per datagram
    // (windowed transfers measured 10-20 % faster). `tid`, unconnected, gets only what strangers send to
    // the port, so they can still be told error 5 (a connected socket alone would never see them).
    const tid = udpSocket(this.address.host, true);
    const sockets = [tid];
    let client: Socket | undefined;
    const send = (packet: Datagram) => client?.send(packet);
    const session = new Session(
      {
        blksize: n.blksize,
        windowsize: n.windowsize,
        timeoutMs: n.timeoutMs,
        retries: config.retries,
        maxIdleMs: config.maxIdleMs,
        oack: n.oack,
        source,
      },
      send,
      (outcome) => {
        if (outcome.kind === "failed" && outcome.notify) {
          send(encodeError(ErrorCode.NOT_DEFINED, outcome.reason));
        }
        this.finish(key, transfer, rinfo, session, outcome, n.oack);
        void source.close().catch(() => {});
        for (const s of sockets) closeQuietly(s);
      },
    );
    transfer.session = session;
    const onError = (err: Error) => {
      this.opts.log.warn({ err, client: rinfo.address }, "tftp transfer socket error");
      session.abort(`socket error: ${(err as NodeJS.ErrnoException).code ?? err.message}`, false);
    };
    tid.on("error", onError);
    tid.on("message", (msg, from) => {
      // RFC 1350: a stranger gets error 5 and the transfer carries on.
      if (from.port !== 0 && (msg.length < 2 || msg.readUInt16BE(0) !== Opcode.ERROR)) {
        tid.send(encodeError(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), from.port, from.address);
      }
    });
    tid.bind({ address: this.address.host, port: 0 }, () => {
      if (session.finished) return;
      const c = udpSocket(this.address.host, true);
      sockets.push(c);
      c.on("error", onError);
      c.on("message", (msg) => {
        let packet: Packet;
        try {
          packet = decode(msg);
        } catch {
          this.counters.malformed++;
          return;
        }
        if (!session.receive(packet)) this.counters.malformed++;
      });
      c.bind({ address: this.address.host, port: tid.address().port }, () => {
        c.connect(rinfo.port, rinfo.address, () => {
          if (session.finished) return;
          client = c;
          session.start();
        });
      });
    });
  }

  private finish(
    key: string,
    t: Transfer,
    rinfo: RemoteInfo,
    session: Session,
    outcome: Outcome,
    granted: ReadonlyMap<string, string>,
  ): void {
    this.release(key, t);
    this.counters.bytes += session.bytes;
    const detail = {
      ip: rinfo.address,
      port: rinfo.port,
      file: t.file,
      bytes: session.bytes,
      durationMs: Math.round(performance.now() - t.startedAt),
      options: t.options,
      granted: Object.fromEntries(granted),
    };
    const { log, events } = this.opts;
    if (t.evicted) {
      this.counters.evicted++;
      log.debug({ ...detail, reason: outcome.kind === "done" ? "done" : outcome.reason }, "tftp transfer evicted");
    } else if (outcome.kind === "done") {
      this.counters.transfers++;
      log.info(detail, "tftp transfer done");
      events.append({ kind: "tftp.transfer", detail });
    } else if (outcome.kind === "aborted") {
      log.debug({ ...detail, reason: outcome.reason }, "tftp client ended after the option ack");
      events.append({ kind: "tftp.aborted", detail: { ...detail, reason: outcome.reason } });
    } else {
      this.counters.failed++;
      log.warn({ ...detail, reason: outcome.reason }, "tftp transfer failed");
      events.append({ kind: "tftp.failed", detail: { ...detail, error: outcome.reason } });
    }
  }

  private refuse(rinfo: RemoteInfo, req: Request, err: FileAccessError, code: number = err.code): void {
    this.counters.failed++;
    if (!this.closing) this.socket.send(encodeError(code, err.message), rinfo.port, rinfo.address);
    const detail = {
      ip: rinfo.address,
      port: rinfo.port,
      file: req.filename,
      op: req.op === Opcode.WRQ ? "write" : "read",
      error: err.message,
    };
    this.refusals.record({
      kind: "tftp.failed",
      client: rinfo.address,
      reason: String(code),
      detail: { ...detail, bytes: 0, durationMs: 0, options: Object.fromEntries(req.options) },
      message: "tftp request refused",
    });
  }

  private release(key: string, t: Transfer): void {
    if (this.transfers.get(key) === t) this.transfers.delete(key);
    this.slots.delete(t.client, t);
  }
}
