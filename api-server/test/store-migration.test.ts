/** Schema migrations apply over a database written by an older version, keeping its rows. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { StageArn } from '@stagecast/protocol';
import { MIGRATIONS } from '../src/store/migrations.js';
import { SqliteStore } from '../src/store/sqlite.js';

test('v1 → v2: stages recorded before endpoints_at existed count as read at creation, and are refreshed first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-mig-'));
  try {
    const db = new Database(join(dir, 'api-server.db'));
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    db.exec(MIGRATIONS[0]!.sql);
    db.prepare('INSERT INTO schema_migrations VALUES (1, ?, ?)').run(MIGRATIONS[0]!.name, Date.now());
    const arn = 'arn:aws:ivs:us-east-1:123456789012:stage/old' as StageArn;
    db.prepare(
      `INSERT INTO stages (arn, id, name, capacity, state, whip_url, playback, tags, created_at, empty_since)
       VALUES (?, 'old', 'old', 50, 'active', 'https://old.global-bm.whip.live-video.net', '{"type":"ivs"}', '{}', 1700000000000, NULL)`,
    ).run(arn);
    db.close();
    const store = new SqliteStore(dir);
    try {
      assert.equal((await store.getStage(arn))!.endpointsAt, 1700000000000);
      assert.equal(await store.updateStageEndpoints(arn, 'https://new.global-bm.whip.live-video.net', 1800000000000), true);
      const s = (await store.getStage(arn))!;
      assert.equal(s.whipUrl, 'https://new.global-bm.whip.live-video.net');
      assert.equal(s.endpointsAt, 1800000000000);
      assert.equal(await store.updateStageEndpoints('arn:aws:ivs:us-east-1:123456789012:stage/none' as StageArn, 'https://x.example', 1), false);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
