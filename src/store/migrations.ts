/**
 * Schema history. Append a new entry for every change; never edit an applied one: `user_version` records
 * how many have run, and a file with a higher number than this list was written by a newer Kindling.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the data model of DESIGN.md §4.
  `
  CREATE TABLE profiles (
    name        TEXT PRIMARY KEY,
    body        TEXT NOT NULL,            -- JSON of the validated profile minus name
    builtin     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE machines (
    mac         TEXT PRIMARY KEY,
    uuid        TEXT,
    serial      TEXT,
    hostname    TEXT,
    arch        TEXT,
    labels      TEXT NOT NULL DEFAULT '{}',
    metadata    TEXT NOT NULL DEFAULT '{}',
    profile     TEXT,
    state       TEXT NOT NULL,
    ip          TEXT UNIQUE,
    first_seen  TEXT,
    last_seen   TEXT,
    installed_at TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE INDEX machines_state ON machines(state);
  CREATE INDEX machines_profile ON machines(profile);
  CREATE TABLE groups (
    name        TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    mac         TEXT,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',
    at          TEXT NOT NULL
  );
  CREATE INDEX events_mac ON events(mac, id);
  CREATE TABLE leases (
    ip          TEXT PRIMARY KEY,
    mac         TEXT NOT NULL,
    state       TEXT NOT NULL,            -- offered | bound | declined | released
    expires_at  INTEGER NOT NULL,         -- unix ms
    hostname    TEXT,
    updated_at  INTEGER NOT NULL
  );
  CREATE INDEX leases_mac ON leases(mac);
  `,
  // 2: when the machine entered its current state (lifecycle deadlines, UI durations).
  `
  ALTER TABLE machines ADD COLUMN state_changed_at TEXT;
  UPDATE machines SET state_changed_at = updated_at;
  `,
  // 3: retention prunes events by age.
  `
  CREATE INDEX events_at ON events(at);
  `,
  // 4: machines a boot request created and nobody changed since (no profile, no edit, no state change): the
  // discovered cap evicts from the front of this index, least recently seen first.
  `
  ALTER TABLE machines ADD COLUMN untouched INTEGER NOT NULL DEFAULT 0;
  UPDATE machines SET untouched = 1
    WHERE state = 'discovered' AND profile IS NULL AND first_seen = created_at AND updated_at = created_at;
  CREATE INDEX machines_untouched ON machines(last_seen, mac) WHERE untouched = 1;
  `,
  // 5: a machine's own network loader (ipxe | grub), over its profile's.
  `
  ALTER TABLE machines ADD COLUMN loader TEXT;
  `,
  // 6: a machine's BMC (out-of-band power). The password only as AES-GCM ciphertext naming its key.
  `
  CREATE TABLE bmcs (
    mac         TEXT PRIMARY KEY REFERENCES machines(mac) ON DELETE CASCADE,
    driver      TEXT NOT NULL,
    address     TEXT NOT NULL,
    port        INTEGER NOT NULL,
    username    TEXT NOT NULL,
    secret      TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    options     TEXT NOT NULL DEFAULT '{}',
    power_state TEXT NOT NULL DEFAULT 'unknown',
    power_error TEXT,
    power_checked_at TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE INDEX bmcs_checked ON bmcs(power_checked_at);
  `,
  // 7: several nodes on one PostgreSQL. Events name the node that recorded them. Console sessions live in the
  // database (a login holds on every node, and across a restart). On a node whose shared state is in
  // PostgreSQL this file is the node's replica: `pending_sightings` lists machines this node saw that
  // PostgreSQL has not heard of yet, and `replication` holds the shipping cursor of this node's events.
  `
  ALTER TABLE events ADD COLUMN node TEXT;
  CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    csrf        TEXT NOT NULL,
    flash       TEXT,
    seen_at     INTEGER NOT NULL
  );
  CREATE TABLE pending_sightings (
    mac         TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL
  );
  CREATE TABLE replication (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
  );
  `,
];
