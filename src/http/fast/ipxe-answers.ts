import { getQueryParam } from "hono/utils/url";
import type { RecentClients } from "../../boot/attribution.ts";
import type { Machines } from "../../boot/machines.ts";
import type { ReleaseSource } from "../../boot/releases.ts";
import type { BootService, IpxeAnswer } from "../../boot/service.ts";
import type { CoalescedLog } from "../../limits/coalesce.ts";
import type { Store } from "../../store/index.ts";
import { AnswerCache, type CachedAnswer } from "./answer-cache.ts";

export interface IpxeAnswersDeps {
  boot: BootService;
  /** The machine owner: a replayed answer is a sighting too. */
  machines: Pick<Machines, "seenAgain">;
  store: Store;
  coalesced: CoalescedLog;
  recent: RecentClients;
  /** The Flatcar mirror the boot service asks (a cached script naming a release is good while it is current). */
  mirror: ReleaseSource;
}

/** Outcomes whose script depends only on what the store holds (and, for `boot`, the mirrored release). */
const CACHEABLE = new Set<IpxeAnswer["outcome"]>(["boot", "local", "wait"]);

/**
 * `/ipxe`, for the hono route and the front listener alike: the boot service's answer, recorded in the
 * machine's history, resolved once that history is committed (group commit, store/history-writer.ts).
 *
 * The same request again (same client address, same query) while nothing that could change its answer was
 * written is answered from a cache, and recorded exactly as the boot service would have: the machine's
 * `last_seen` and the same `ipxe.request` occurrence. Only answers whose computation wrote nothing but that
 * (no new machine, no newly learnt field, no eviction, no render failure) and recorded that one occurrence
 * are cached, so replaying it is the whole story.
 */
export class IpxeAnswers {
  private readonly cache = new AnswerCache();

  constructor(private readonly deps: IpxeAnswersDeps) {}

  /** `query` is the request's query string without `?`; `ip` the client's address. */
  answer(query: string, ip: string | undefined): Promise<{ status: IpxeAnswer["status"]; body: string }> {
    const { store } = this.deps;
    const key = `${ip ?? ""} ${query}`;
    const now = Date.now();
    const cached = this.cache.get(key, store.writeGeneration(), now);
    if (cached && this.releaseCurrent(cached)) {
      this.deps.machines.seenAgain(cached.mac);
      this.deps.coalesced.record(cached.occurrence);
      this.deps.recent.note(ip, cached.mac);
      return store.history.committed().then(() => cached);
    }
    const answer = this.render(key, query, ip, now);
    return store.history.committed().then(() => answer);
  }

  private render(key: string, query: string, ip: string | undefined, now: number): IpxeAnswer {
    const { boot, store, coalesced } = this.deps;
    const before = store.writeGeneration();
    const { value: answer, recorded } = coalesced.capturing(() =>
      store.history.reading(() => boot.ipxe(parseQuery(query), ip)),
    );
    if (answer.outcome !== "too-many-new") this.deps.recent.note(ip, answer.mac);
    const generation = store.writeGeneration();
    const occurrence = recorded.length === 1 && recorded[0]!.kind === "ipxe.request" ? recorded[0] : undefined;
    if (generation !== before || !occurrence || answer.status !== 200 || !answer.mac || !CACHEABLE.has(answer.outcome))
      return answer;
    // Asked right after the boot service asked, in the same turn: the release its script names.
    const release = answer.outcome === "boot" ? this.releaseOf(answer.profile) : undefined;
    if (release === null) return answer;
    const cached: CachedAnswer = { status: 200, body: answer.body, mac: answer.mac, occurrence };
    if (release) cached.release = release;
    this.cache.set(key, cached, generation, now);
    return answer;
  }

  /**
   * The mirrored release a Flatcar profile's script names: undefined for other profiles, null when it is no
   * longer ready (which keeps the answer out of the cache).
   */
  private releaseOf(profileName: string | undefined): CachedAnswer["release"] | null {
    const flatcar = profileName ? this.deps.store.profiles.get(profileName)?.flatcar : undefined;
    if (!flatcar) return undefined;
    const ready = this.deps.mirror.ensure(flatcar);
    return ready.state === "ready" ? { request: flatcar, ready } : null;
  }

  /** Asks the mirror again, as the boot service does on every request: a new or removed release is news. */
  private releaseCurrent(a: CachedAnswer): boolean {
    if (!a.release) return true;
    const now = this.deps.mirror.ensure(a.release.request);
    return (
      now.state === "ready" && now.version === a.release.ready.version && now.basePath === a.release.ready.basePath
    );
  }
}

/** The query as hono's `c.req.query()` reads it (first value of a repeated key, `+` and `%xx` decoded). */
export function parseQuery(query: string): Record<string, string> {
  return getQueryParam(`http://k/?${query}`) as Record<string, string>;
}
