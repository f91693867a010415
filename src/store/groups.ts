import { type Group, GroupBodySchema, type GroupCreate } from "../model/group.ts";
import { type Db, nowIso } from "./db.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import { bodyParser } from "./parsed.ts";

interface Row {
  name: string;
  body: string;
  created_at: string;
  updated_at: string;
}

const parseBody = bodyParser(GroupBodySchema);

const toGroup = (r: Row): Group => ({
  name: r.name,
  ...parseBody(r.body),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class GroupStore {
  constructor(private readonly db: Db) {}

  get(name: string): Group | undefined {
    const row = this.db.prepare("SELECT * FROM groups WHERE name = ?").get(name) as Row | undefined;
    return row && toGroup(row);
  }

  require(name: string): Group {
    const g = this.get(name);
    if (!g) throw new NotFoundError(`group ${name} not found`);
    return g;
  }

  list(): Group[] {
    return (this.db.prepare("SELECT * FROM groups ORDER BY name").all() as Row[]).map(toGroup);
  }

  create(g: GroupCreate): Group {
    if (this.get(g.name)) throw new ConflictError(`group ${g.name} already exists`, { name: g.name });
    return this.put(g);
  }

  put(g: GroupCreate): Group {
    const { name, ...body } = g;
    const now = nowIso();
    this.db
      .prepare(
        `INSERT INTO groups (name, body, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
      )
      .run(name, JSON.stringify(body), now, now);
    return this.require(name);
  }

  delete(name: string): void {
    const info = this.db.prepare("DELETE FROM groups WHERE name = ?").run(name);
    if (info.changes === 0) throw new NotFoundError(`group ${name} not found`);
  }
}
