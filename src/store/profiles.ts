import { type Profile, ProfileBodySchema, type ProfileCreate } from "../model/profile.ts";
import { type Db, nowIso } from "./db.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import { bodyParser } from "./parsed.ts";

interface Row {
  name: string;
  body: string;
  builtin: number;
  created_at: string;
  updated_at: string;
}

const parseBody = bodyParser(ProfileBodySchema);

const toProfile = (r: Row): Profile => ({
  name: r.name,
  ...parseBody(r.body),
  builtin: r.builtin === 1,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class ProfileStore {
  constructor(private readonly db: Db) {}

  get(name: string): Profile | undefined {
    const row = this.db.prepare("SELECT * FROM profiles WHERE name = ?").get(name) as Row | undefined;
    return row && toProfile(row);
  }

  require(name: string): Profile {
    const p = this.get(name);
    if (!p) throw new NotFoundError(`profile ${name} not found`);
    return p;
  }

  list(): Profile[] {
    return (this.db.prepare("SELECT * FROM profiles ORDER BY name").all() as Row[]).map(toProfile);
  }

  create(p: ProfileCreate): Profile {
    if (this.get(p.name)) throw new ConflictError(`profile ${p.name} already exists`, { name: p.name });
    return this.put(p);
  }

  /** Creates or replaces. An operator's write turns a built-in into their own, which restarts then keep. */
  put(p: ProfileCreate, builtin = false): Profile {
    const { name, ...body } = p;
    const now = nowIso();
    this.db
      .prepare(
        `INSERT INTO profiles (name, body, builtin, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET body = excluded.body, builtin = excluded.builtin, updated_at = excluded.updated_at`,
      )
      .run(name, JSON.stringify(body), builtin ? 1 : 0, now, now);
    return this.require(name);
  }

  /** Loads a built-in unless the operator has replaced it; an unchanged one is left alone (keeps updated_at). */
  putBuiltin(p: ProfileCreate): void {
    const row = this.db.prepare("SELECT body, builtin FROM profiles WHERE name = ?").get(p.name) as
      | Pick<Row, "body" | "builtin">
      | undefined;
    const { name: _name, ...body } = p;
    if (!row || (row.builtin === 1 && row.body !== JSON.stringify(body))) this.put(p, true);
  }

  delete(name: string): void {
    const used = this.db.prepare("SELECT count(*) n FROM machines WHERE profile = ?").get(name) as { n: number };
    const groups = (this.db.prepare("SELECT name, body FROM groups").all() as { name: string; body: string }[]).filter(
      (g) => JSON.parse(g.body).profile === name,
    );
    if (used.n > 0 || groups.length > 0)
      throw new ConflictError(`profile ${name} is in use by ${used.n} machine(s) and ${groups.length} group(s)`, {
        machines: used.n,
        groups: groups.map((g) => g.name),
      });
    const info = this.db.prepare("DELETE FROM profiles WHERE name = ?").run(name);
    if (info.changes === 0) throw new NotFoundError(`profile ${name} not found`);
  }
}
