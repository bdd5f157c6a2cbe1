/**
 * Store on better-sqlite3 (WAL), for one API Server. Its methods return promises to share the Store interface with
 * RedisStore, but each does its work synchronously in one transaction, so seat reservation is race-free in one process.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Playback, ServerId, StageArn, StageId, ViewerId } from '@stagecast/protocol';
import { migrate } from './migrations.js';
import { pickStage } from './seat-policy.js';
import type {
  LegRecord,
  MediaServerRecord,
  ScalingEventRecord,
  StageRecord,
  StageState,
  StageWithCounts,
  Store,
  UsageBucket,
  UsageSample,
  ViewerMove,
  ViewerRecord,
} from './store.js';

const MINUTE_MS = 60_000;

interface StageRow {
  arn: string;
  id: string;
  name: string;
  capacity: number;
  state: StageState;
  whip_url: string;
  playback: string;
  tags: string;
  created_at: number;
  empty_since: number | null;
  endpoints_at: number | null;
  media_server_id: string | null;
  previous_media_server_id: string | null;
  viewers: number;
  connected: number;
}
interface ViewerRow {
  id: string;
  stage_arn: string;
  user_id: string | null;
  joined_at: number;
  last_seen: number;
  connected: number;
  moved_from: string | null;
  moved_at: number | null;
}
interface ServerRow {
  id: string;
  ip: string;
  port: number;
  state: 'online' | 'offline';
  registered_at: number;
  last_heartbeat: number;
  publisher_online: number;
  legs: string;
  url: string | null;
  max_legs: number | null;
  draining: number;
  ingest: 'broadcaster' | 'relay' | 'none' | null;
}
interface EventRow {
  id: number;
  at: number;
  action: ScalingEventRecord['action'];
  stage_arn: string | null;
  reason: string;
  detail: string | null;
}

const stageOf = (r: StageRow): StageWithCounts => ({
  arn: r.arn as StageArn,
  id: r.id as StageId,
  name: r.name,
  capacity: r.capacity,
  state: r.state,
  whipUrl: r.whip_url,
  playback: JSON.parse(r.playback) as Playback,
  tags: JSON.parse(r.tags) as Record<string, string>,
  createdAt: r.created_at,
  emptySince: r.empty_since,
  endpointsAt: r.endpoints_at ?? r.created_at,
  mediaServerId: r.media_server_id as ServerId | null,
  previousMediaServerId: r.previous_media_server_id as ServerId | null,
  viewers: r.viewers,
  connected: r.connected,
});
const viewerOf = (r: ViewerRow): ViewerRecord => ({
  id: r.id as ViewerId,
  stageArn: r.stage_arn as StageArn,
  userId: r.user_id,
  joinedAt: r.joined_at,
  lastSeen: r.last_seen,
  connected: r.connected === 1,
  movedFrom: r.moved_from as StageArn | null,
  movedAt: r.moved_at,
});
interface MoveRow {
  id: string;
  stage_arn: string;
  moved_from: string;
  moved_at: number;
}
const moveOf = (r: MoveRow): ViewerMove => ({
  viewerId: r.id as ViewerId,
  from: r.moved_from as StageArn,
  to: r.stage_arn as StageArn,
  at: r.moved_at,
});
const serverOf = (r: ServerRow): MediaServerRecord => ({
  id: r.id as ServerId,
  ip: r.ip,
  port: r.port,
  state: r.state,
  registeredAt: r.registered_at,
  lastHeartbeat: r.last_heartbeat,
  publisherOnline: r.publisher_online === 1,
  legs: JSON.parse(r.legs) as LegRecord[],
  ...(r.url !== null ? { url: r.url } : {}),
  ...(r.max_legs !== null ? { maxLegs: r.max_legs } : {}),
  draining: r.draining === 1,
  ...(r.ingest !== null ? { ingest: r.ingest } : {}),
});
const eventOf = (r: EventRow): ScalingEventRecord => ({
  id: r.id,
  at: r.at,
  action: r.action,
  stageArn: r.stage_arn as StageArn | null,
  reason: r.reason,
  ...(r.detail !== null ? { detail: JSON.parse(r.detail) as unknown } : {}),
});

const STAGES_WITH_COUNTS = `
  SELECT s.*, COUNT(v.id) AS viewers, COALESCE(SUM(v.connected), 0) AS connected
  FROM stages s LEFT JOIN viewers v ON v.stage_arn = s.arn`;

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly q;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.db = new Database(join(dataDir, 'api-server.db'));
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a committed transaction survives a process crash (kill -9); only power loss may drop the last ones.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    const db = this.db;
    this.q = {
      insertStage: db.prepare(
        `INSERT INTO stages (arn, id, name, capacity, state, whip_url, playback, tags, created_at, empty_since, endpoints_at,
           media_server_id, previous_media_server_id)
         VALUES (@arn, @id, @name, @capacity, @state, @whipUrl, @playback, @tags, @createdAt, @emptySince, @endpointsAt,
           @mediaServerId, @previousMediaServerId)`,
      ),
      getStage: db.prepare(`${STAGES_WITH_COUNTS} WHERE s.arn = ? GROUP BY s.arn`),
      listStages: db.prepare(`${STAGES_WITH_COUNTS} GROUP BY s.arn ORDER BY s.created_at, s.arn`),
      setStageState: db.prepare('UPDATE stages SET state = ? WHERE arn = ?'),
      setStageEndpoints: db.prepare('UPDATE stages SET whip_url = ?, endpoints_at = ? WHERE arn = ?'),
      setStageAssignment: db.prepare('UPDATE stages SET media_server_id = ?, previous_media_server_id = ? WHERE arn = ?'),
      stageViewerIds: db.prepare('SELECT id FROM viewers WHERE stage_arn = ?'),
      deleteStageViewers: db.prepare('DELETE FROM viewers WHERE stage_arn = ?'),
      deleteStage: db.prepare('DELETE FROM stages WHERE arn = ?'),
      insertViewer: db.prepare(
        'INSERT INTO viewers (id, stage_arn, user_id, joined_at, last_seen, connected) VALUES (?, ?, ?, ?, ?, 0)',
      ),
      stageNotEmpty: db.prepare('UPDATE stages SET empty_since = NULL WHERE arn = ?'),
      markEmpty: db.prepare(
        'UPDATE stages SET empty_since = ? WHERE empty_since IS NULL AND NOT EXISTS (SELECT 1 FROM viewers WHERE stage_arn = stages.arn)',
      ),
      getViewer: db.prepare('SELECT * FROM viewers WHERE id = ?'),
      touchViewer: db.prepare('UPDATE viewers SET last_seen = ? WHERE id = ?'),
      deleteViewer: db.prepare('DELETE FROM viewers WHERE id = ?'),
      staleViewers: db.prepare('SELECT * FROM viewers WHERE last_seen < ?'),
      setConnected: db.prepare('UPDATE viewers SET connected = ? WHERE id = ? AND stage_arn = ?'),
      countViewers: db.prepare('SELECT COUNT(*) AS n FROM viewers'),
      getServer: db.prepare('SELECT * FROM media_servers WHERE id = ?'),
      upsertServer: db.prepare(
        `INSERT INTO media_servers (id, ip, port, state, registered_at, last_heartbeat, publisher_online, legs, url, max_legs, draining, ingest)
         VALUES (@id, @ip, @port, @state, @registeredAt, @lastHeartbeat, @publisherOnline, @legs, @url, @maxLegs, @draining, @ingest)
         ON CONFLICT(id) DO UPDATE SET ip = excluded.ip, port = excluded.port, state = excluded.state,
           registered_at = excluded.registered_at, last_heartbeat = excluded.last_heartbeat,
           publisher_online = excluded.publisher_online, legs = excluded.legs, url = excluded.url,
           max_legs = excluded.max_legs, draining = excluded.draining, ingest = excluded.ingest`,
      ),
      heartbeat: db.prepare(
        `UPDATE media_servers SET last_heartbeat = ?, state = 'online',
           publisher_online = COALESCE(?, publisher_online), legs = COALESCE(?, legs) WHERE id = ?`,
      ),
      setServerState: db.prepare('UPDATE media_servers SET draining = COALESCE(?, draining), ingest = COALESCE(?, ingest) WHERE id = ?'),
      staleServers: db.prepare(`SELECT * FROM media_servers WHERE state = 'online' AND last_heartbeat < ?`),
      setServerOffline: db.prepare(`UPDATE media_servers SET state = 'offline' WHERE id = ?`),
      listServers: db.prepare('SELECT * FROM media_servers ORDER BY id'),
      addEvent: db.prepare('INSERT INTO scaling_events (at, action, stage_arn, reason, detail) VALUES (?, ?, ?, ?, ?)'),
      listEvents: db.prepare('SELECT * FROM scaling_events ORDER BY id DESC LIMIT ?'),
      newestSeats: db.prepare('SELECT id FROM viewers WHERE stage_arn = ? ORDER BY joined_at DESC, id LIMIT ?'),
      moveViewer: db.prepare('UPDATE viewers SET stage_arn = ?, moved_from = ?, moved_at = ?, connected = 0 WHERE id = ?'),
      pendingMoves: db.prepare('SELECT id, stage_arn, moved_from, moved_at FROM viewers WHERE moved_from IS NOT NULL ORDER BY moved_at, id'),
      completeMove: db.prepare('UPDATE viewers SET moved_from = NULL, moved_at = NULL WHERE id = ? AND moved_from IS NOT NULL'),
      staleMoves: db.prepare('SELECT id, stage_arn, moved_from, moved_at FROM viewers WHERE moved_from IS NOT NULL AND moved_at < ?'),
      setStageEmptySince: db.prepare('UPDATE stages SET empty_since = ? WHERE arn = ? AND NOT EXISTS (SELECT 1 FROM viewers WHERE stage_arn = stages.arn)'),
      addUsage: db.prepare(
        `INSERT INTO participant_usage (minute, stage_arn, viewer_ms, publisher_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT(minute, stage_arn) DO UPDATE SET viewer_ms = viewer_ms + excluded.viewer_ms, publisher_ms = publisher_ms + excluded.publisher_ms`,
      ),
      setMeteredUntil: db.prepare('INSERT INTO usage_meter (id, metered_until) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET metered_until = excluded.metered_until'),
      meteredUntil: db.prepare('SELECT metered_until AS at FROM usage_meter WHERE id = 1'),
      listUsage: db.prepare('SELECT minute, stage_arn, viewer_ms, publisher_ms FROM participant_usage WHERE minute >= ? AND minute < ? ORDER BY minute, stage_arn'),
      ping: db.prepare('SELECT 1'),
    };
  }

  async insertStage(s: StageRecord): Promise<void> {
    this.q.insertStage.run({
      ...s,
      playback: JSON.stringify(s.playback),
      tags: JSON.stringify(s.tags),
      endpointsAt: s.endpointsAt ?? s.createdAt,
      mediaServerId: s.mediaServerId ?? null,
      previousMediaServerId: s.previousMediaServerId ?? null,
    });
  }
  async getStage(arn: StageArn): Promise<StageWithCounts | undefined> {
    return this.stage(arn);
  }
  async listStages(): Promise<StageWithCounts[]> {
    return this.stages();
  }
  private stage(arn: StageArn): StageWithCounts | undefined {
    const r = this.q.getStage.get(arn) as StageRow | undefined;
    return r && stageOf(r);
  }
  private stages(): StageWithCounts[] {
    return (this.q.listStages.all() as StageRow[]).map(stageOf);
  }
  async setStageState(arn: StageArn, state: StageState): Promise<void> {
    this.q.setStageState.run(state, arn);
  }
  async updateStageEndpoints(arn: StageArn, whipUrl: string, at: number): Promise<boolean> {
    return this.q.setStageEndpoints.run(whipUrl, at, arn).changes > 0;
  }
  async setStageAssignment(arn: StageArn, mediaServerId: ServerId | null, previousMediaServerId: ServerId | null): Promise<boolean> {
    return this.q.setStageAssignment.run(mediaServerId, previousMediaServerId, arn).changes > 0;
  }
  async removeStage(arn: StageArn): Promise<ViewerId[]> {
    return this.db.transaction(() => {
      const ids = (this.q.stageViewerIds.all(arn) as { id: string }[]).map((r) => r.id as ViewerId);
      this.q.deleteStageViewers.run(arn);
      this.q.deleteStage.run(arn);
      return ids;
    })();
  }

  async reserveSeat(viewer: { id: ViewerId; userId: string | null; now: number }, opts: { stageArn?: StageArn } = {}): Promise<StageWithCounts | undefined> {
    return this.db.transaction(() => {
      const only = opts.stageArn;
      const stage = pickStage(only ? [this.stage(only)].filter((x) => x !== undefined) : this.stages());
      if (!stage) return undefined;
      this.q.insertViewer.run(viewer.id, stage.arn, viewer.userId, viewer.now, viewer.now);
      this.q.stageNotEmpty.run(stage.arn);
      return { ...stage, viewers: stage.viewers + 1, emptySince: null };
    }).immediate();
  }
  async getViewer(id: ViewerId): Promise<ViewerRecord | undefined> {
    return this.viewer(id);
  }
  private viewer(id: ViewerId): ViewerRecord | undefined {
    const r = this.q.getViewer.get(id) as ViewerRow | undefined;
    return r && viewerOf(r);
  }
  async touchViewer(id: ViewerId, now: number): Promise<ViewerRecord | undefined> {
    if (this.q.touchViewer.run(now, id).changes === 0) return undefined;
    return this.viewer(id);
  }
  async releaseViewer(id: ViewerId, now: number): Promise<boolean> {
    return this.db.transaction(() => {
      const gone = this.q.deleteViewer.run(id).changes > 0;
      if (gone) this.q.markEmpty.run(now);
      return gone;
    })();
  }
  async releaseStaleViewers(olderThan: number, now: number): Promise<ViewerRecord[]> {
    return this.db.transaction(() => {
      const stale = (this.q.staleViewers.all(olderThan) as ViewerRow[]).map(viewerOf);
      for (const v of stale) this.q.deleteViewer.run(v.id);
      if (stale.length) this.q.markEmpty.run(now);
      return stale;
    })();
  }
  async setViewerConnected(id: ViewerId, stageArn: StageArn, connected: boolean): Promise<boolean> {
    return this.q.setConnected.run(connected ? 1 : 0, id, stageArn).changes > 0;
  }
  async countViewers(): Promise<number> {
    return (this.q.countViewers.get() as { n: number }).n;
  }

  async moveViewers(from: StageArn, to: StageArn, count: number, now: number): Promise<ViewerMove[]> {
    return this.db
      .transaction(() => {
        const target = this.stage(to);
        if (!target || target.state !== 'active' || from === to) return [];
        const n = Math.max(0, Math.min(count, target.capacity - target.viewers));
        const ids = (this.q.newestSeats.all(from, n) as { id: string }[]).map((r) => r.id as ViewerId);
        for (const id of ids) this.q.moveViewer.run(to, from, now, id);
        if (ids.length) {
          this.q.stageNotEmpty.run(to);
          this.q.setStageEmptySince.run(now, from);
        }
        return ids.map((viewerId) => ({ viewerId, from, to, at: now }));
      })
      .immediate();
  }
  async listPendingMoves(): Promise<ViewerMove[]> {
    return (this.q.pendingMoves.all() as MoveRow[]).map(moveOf);
  }
  async completeMove(id: ViewerId): Promise<boolean> {
    return this.q.completeMove.run(id).changes > 0;
  }
  async expireMoves(olderThan: number): Promise<ViewerMove[]> {
    return this.db.transaction(() => {
      const stale = (this.q.staleMoves.all(olderThan) as MoveRow[]).map(moveOf);
      for (const m of stale) this.q.completeMove.run(m.viewerId);
      return stale;
    })();
  }

  async accrueUsage(from: number, to: number, samples: UsageSample[]): Promise<void> {
    if (!(to > from)) return;
    this.db.transaction(() => {
      // Split [from, to) at minute boundaries so each bucket gets exactly its share.
      for (let t = from; t < to; ) {
        const minute = Math.floor(t / MINUTE_MS) * MINUTE_MS;
        const end = Math.min(to, minute + MINUTE_MS);
        const ms = end - t;
        for (const s of samples) {
          if (s.viewers <= 0 && s.publishers <= 0) continue;
          this.q.addUsage.run(minute, s.stageArn, s.viewers * ms, s.publishers * ms);
        }
        t = end;
      }
      this.q.setMeteredUntil.run(to);
    })();
  }
  async usageMeteredUntil(): Promise<number | undefined> {
    return (this.q.meteredUntil.get() as { at: number } | undefined)?.at;
  }
  async listUsage(from: number, to: number): Promise<UsageBucket[]> {
    const first = Math.floor(from / MINUTE_MS) * MINUTE_MS;
    return (this.q.listUsage.all(first, to) as { minute: number; stage_arn: string; viewer_ms: number; publisher_ms: number }[]).map((r) => ({
      minute: r.minute,
      stageArn: r.stage_arn as StageArn,
      viewerMs: r.viewer_ms,
      publisherMs: r.publisher_ms,
    }));
  }

  async upsertMediaServer(m: MediaServerRecord): Promise<MediaServerRecord | undefined> {
    return this.db.transaction(() => {
      const prev = this.server(m.id);
      this.q.upsertServer.run({
        ...m,
        publisherOnline: m.publisherOnline ? 1 : 0,
        legs: JSON.stringify(m.legs),
        url: m.url ?? null,
        maxLegs: m.maxLegs ?? null,
        draining: m.draining ? 1 : 0,
        ingest: m.ingest ?? null,
      });
      return prev;
    })();
  }
  async getMediaServer(id: ServerId): Promise<MediaServerRecord | undefined> {
    return this.server(id);
  }
  private server(id: ServerId): MediaServerRecord | undefined {
    const r = this.q.getServer.get(id) as ServerRow | undefined;
    return r && serverOf(r);
  }
  async updateMediaServerHeartbeat(
    id: ServerId,
    at: number,
    publisherOnline: boolean | undefined,
    legs: LegRecord[] | undefined,
  ): Promise<MediaServerRecord | undefined> {
    const pub = publisherOnline === undefined ? null : publisherOnline ? 1 : 0;
    const l = legs === undefined ? null : JSON.stringify(legs);
    if (this.q.heartbeat.run(at, pub, l, id).changes === 0) return undefined;
    return this.server(id);
  }
  async updateMediaServerState(id: ServerId, patch: { draining?: boolean; ingest?: 'broadcaster' | 'relay' | 'none' }): Promise<MediaServerRecord | undefined> {
    const d = patch.draining === undefined ? null : patch.draining ? 1 : 0;
    if (this.q.setServerState.run(d, patch.ingest ?? null, id).changes === 0) return undefined;
    return this.server(id);
  }
  async markStaleMediaServersOffline(olderThan: number): Promise<MediaServerRecord[]> {
    return this.db.transaction(() => {
      const stale = (this.q.staleServers.all(olderThan) as ServerRow[]).map(serverOf);
      for (const s of stale) this.q.setServerOffline.run(s.id);
      return stale.map((s) => ({ ...s, state: 'offline' as const }));
    })();
  }
  async markMediaServerOffline(id: ServerId): Promise<MediaServerRecord | undefined> {
    this.q.setServerOffline.run(id);
    return this.server(id);
  }
  async listMediaServers(): Promise<MediaServerRecord[]> {
    return (this.q.listServers.all() as ServerRow[]).map(serverOf);
  }

  async addScalingEvent(e: Omit<ScalingEventRecord, 'id'>): Promise<ScalingEventRecord> {
    const detail = e.detail === undefined ? null : JSON.stringify(e.detail);
    const id = Number(this.q.addEvent.run(e.at, e.action, e.stageArn, e.reason, detail).lastInsertRowid);
    return { id, ...e };
  }
  async listScalingEvents(limit: number): Promise<ScalingEventRecord[]> {
    return (this.q.listEvents.all(limit) as EventRow[]).map(eventOf);
  }

  async ping(): Promise<void> {
    this.q.ping.get();
  }
  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
