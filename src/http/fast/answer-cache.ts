import type { ReleaseStatus } from "../../flatcar/mirror.ts";
import type { Occurrence } from "../../limits/coalesce.ts";
import type { FlatcarRelease } from "../../model/profile.ts";

/** Answers kept; a new one beyond this drops the oldest (with the bounds below, 10 MiB at most in all). */
export const ANSWER_CACHE_ENTRIES = 1024;
/** Longest `<ip> <query>` key and longest script cached; longer ones are answered, not cached. */
export const ANSWER_CACHE_MAX_KEY = 2048;
export const ANSWER_CACHE_MAX_BODY = 8192;
/**
 * How long an answer is served again. A script's signed URLs carry the expiry of when it was rendered: one
 * second lost of a lifetime of at least 60 s (`boot.signedUrlSeconds`, default a day).
 */
export const ANSWER_CACHE_MAX_AGE_MS = 1000;

/** One rendered `/ipxe` answer and what its request recorded, to be served and recorded again. */
export interface CachedAnswer {
  status: 200;
  body: string;
  mac: string;
  /** The request's `ipxe.request` occurrence, as the boot service recorded it. */
  occurrence: Occurrence;
  /** A Flatcar profile's release as it was mirrored when rendered: the script names its version. */
  release?: { request: FlatcarRelease; ready: Extract<ReleaseStatus, { state: "ready" }> };
}

interface Entry {
  answer: CachedAnswer;
  /** The store's write generation the answer was rendered under (store/statements.ts). */
  generation: number;
  expires: number;
}

/**
 * Rendered `/ipxe` answers by client address and query string. An entry is good while no write that could
 * change an answer has happened (the store's write generation is the one it was rendered under) and for at
 * most ANSWER_CACHE_MAX_AGE_MS; bounded in entries and key length, whatever clients send.
 */
export class AnswerCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries = ANSWER_CACHE_ENTRIES,
    private readonly maxAgeMs = ANSWER_CACHE_MAX_AGE_MS,
  ) {}

  get(key: string, generation: number, now: number): CachedAnswer | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.generation === generation && now < e.expires) return e.answer;
    this.entries.delete(key);
    return undefined;
  }

  set(key: string, answer: CachedAnswer, generation: number, now: number): void {
    if (key.length > ANSWER_CACHE_MAX_KEY || answer.body.length > ANSWER_CACHE_MAX_BODY) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { answer, generation, expires: now + this.maxAgeMs });
  }

  get size(): number {
    return this.entries.size;
  }
}
