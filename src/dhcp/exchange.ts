/**
 * One DHCP exchange as both modes see it: the request as it arrived, the request as understood (who sent it
 * and what it should boot), and the replies to send.
 */
import type { BootAnswer, Client } from "../boot/dhcp-plan.ts";
import type { Loader } from "../boot/plan.ts";
import type { Link } from "./links.ts";
import type { DhcpPacket } from "./packet.ts";

export type Port = "dhcp" | "proxy";

export interface Incoming {
  packet: DhcpPacket;
  port: Port;
  /** Link the request is known to have arrived on (unicast to a link address, or the only link). */
  link: Link | undefined;
  from: { address: string; port: number };
}

export interface Outgoing {
  packet: DhcpPacket;
  /** Send through this link's socket; undefined → the wildcard socket of `port`. */
  link: Link | undefined;
  port: Port;
  address: string;
  destPort: number;
}

/** A request that passed intake: its sender classified and its boot answer planned for the link it came on. */
export interface DhcpRequest {
  req: DhcpPacket;
  inc: Incoming;
  /** Option 53. */
  type: number;
  mac: string;
  client: Client;
  /** The profile's loader, for PXE firmware choosing its first file; undefined for everyone else. */
  loader: Loader | undefined;
  answer: BootAnswer;
}

/** Thrown for requests that decode but make no sense (counted as dropped, with the reason logged). */
export class DropError extends Error {
  override name = "DropError";
}

export const ZERO = "0.0.0.0";
export const BROADCAST = "255.255.255.255";
/** Longest client-chosen text kept in a lease or an event, and longest option 82 echoed: one option's worth. */
export const MAX_TEXT = 255;

/**
 * A request that needs the lease database while it cannot answer (unreachable or too busy): no reply, the
 * client retries. Counted apart from other drops.
 */
export class RefusedError extends DropError {
  override name = "RefusedError";
}
