/** Versioned schema migrations. Append only: never edit a migration that has shipped. */
import type Database from 'better-sqlite3';

export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE stages (
        arn TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        capacity INTEGER NOT NULL CHECK (capacity > 0),
        state TEXT NOT NULL CHECK (state IN ('active', 'draining')),
        whip_url TEXT NOT NULL,
        playback TEXT NOT NULL,
        tags TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        empty_since INTEGER
      );
      CREATE TABLE viewers (
        id TEXT PRIMARY KEY,
        stage_arn TEXT NOT NULL REFERENCES stages(arn) ON DELETE CASCADE,
        user_id TEXT,
        joined_at INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        connected INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX viewers_stage ON viewers(stage_arn);
      CREATE INDEX viewers_last_seen ON viewers(last_seen);
      CREATE TABLE media_servers (
        id TEXT PRIMARY KEY,
        ip TEXT NOT NULL,
        port INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('online', 'offline')),
        registered_at INTEGER NOT NULL,
        last_heartbeat INTEGER NOT NULL,
        publisher_online INTEGER NOT NULL DEFAULT 0,
        legs TEXT NOT NULL DEFAULT '[]'
      );
      CREATE TABLE scaling_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        action TEXT NOT NULL,
        stage_arn TEXT,
        reason TEXT NOT NULL,
        detail TEXT
      );
    `,
  },
  {
    version: 2,
    name: 'stage endpoints fetched at',
    // IVS allows caching a stage's endpoints for 14 days at most: when ours were last read from the provider.
    // Rows from before are taken as read at creation (the oldest they can be), so they are refreshed first.
    sql: `
      ALTER TABLE stages ADD COLUMN endpoints_at INTEGER;
      UPDATE stages SET endpoints_at = created_at;
    `,
  },
  {
    version: 3,
    name: 'participant usage (cost meter)',
    sql: `
      -- Participant-milliseconds per stage per minute (minute = ms epoch of its start). Rows outlive their stage:
      -- the bill does.
      CREATE TABLE participant_usage (
        minute INTEGER NOT NULL,
        stage_arn TEXT NOT NULL,
        viewer_ms INTEGER NOT NULL DEFAULT 0,
        publisher_ms INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (minute, stage_arn)
      );
      -- Until when usage has been metered (one row): after a restart the meter resumes from here.
      CREATE TABLE usage_meter (id INTEGER PRIMARY KEY CHECK (id = 1), metered_until INTEGER NOT NULL);
    `,
  },
  {
    version: 4,
    name: 'viewer moves (consolidation)',
    sql: `
      -- A viewer told to move keeps its seat on the new stage; moved_from names the stage it still plays until it
      -- says it switched (or the move times out). Such a stage is not deleted while moves out of it are pending.
      ALTER TABLE viewers ADD COLUMN moved_from TEXT;
      ALTER TABLE viewers ADD COLUMN moved_at INTEGER;
      CREATE INDEX viewers_moved_from ON viewers(moved_from) WHERE moved_from IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: 'stage ownership (a pool of Media Servers)',
    sql: `
      -- The one Media Server that publishes into a stage, and during a handover the one still publishing until the
      -- new owner's leg connects. A Media Server row says where it is reached, its leg limit, whether it drains and
      -- whether it holds the broadcaster (the origin).
      ALTER TABLE stages ADD COLUMN media_server_id TEXT;
      ALTER TABLE stages ADD COLUMN previous_media_server_id TEXT;
      ALTER TABLE media_servers ADD COLUMN url TEXT;
      ALTER TABLE media_servers ADD COLUMN max_legs INTEGER;
      ALTER TABLE media_servers ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE media_servers ADD COLUMN ingest TEXT;
    `,
  },
];

export function migrate(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  let current = 0;
  for (const m of MIGRATIONS) {
    if (!applied.has(m.version)) {
      db.transaction(() => {
        db.exec(m.sql);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      })();
    }
    current = m.version;
  }
  return current;
}
