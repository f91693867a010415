import { normalizeMac } from "../model/identity.ts";
import type { PagePosition } from "../store/machines.ts";
import { ValidationError } from "./errors.ts";

/** Which way a cursor pages from its position. */
export type CursorDirection = "after" | "before";

/** An opaque page token: the position and direction, base64url JSON (clients must not build them). */
export function encodeCursor(dir: CursorDirection, at: PagePosition): string {
  return Buffer.from(
    JSON.stringify({ [dir === "after" ? "a" : "b"]: at.mac, ...(at.seen ? { s: at.seen } : {}) }),
  ).toString("base64url");
}

const bad = () =>
  new ValidationError("cursor", "cursor: not a cursor this server gave out", [
    { field: "cursor", message: "not a cursor this server gave out" },
  ]);

/** The position a cursor names; a token that is not one of ours is a 400 naming `cursor`. */
export function decodeCursor(token: string): { after?: PagePosition; before?: PagePosition } {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!raw || typeof raw !== "object") throw bad();
  const { a, b, s } = raw as Record<string, unknown>;
  const mac = normalizeMac(typeof a === "string" ? a : typeof b === "string" ? b : "");
  if (!mac || (s !== undefined && (typeof s !== "string" || s.length > 40))) throw bad();
  const at: PagePosition = { mac, ...(typeof s === "string" ? { seen: s } : {}) };
  return typeof a === "string" ? { after: at } : { before: at };
}
