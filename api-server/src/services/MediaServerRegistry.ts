/**
 * Media Servers: register, heartbeat, and offline after 3 missed heartbeats — each change announced. It also knows
 * which ones have their WebSocket to us open (a closed one is the fastest sign of a dead process) and which one is
 * the origin (reports ingest 'broadcaster'), announced as `origin_changed`.
 */
import { timerTask } from '@stagecast/service';
import { NotFound, type Origin, type PublisherReport, type ServerId } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { LegRecord, MediaServerRecord, Store } from '../store/store.js';
import type { EventBus } from './EventBus.js';

export type IngestKind = 'broadcaster' | 'relay' | 'none';

/**
 * What changed about one server. 'online': it (re)appeared, with or without a new process; 'socket_opened' /
 * 'socket_closed': its WebSocket; 'heartbeat': anything a heartbeat may change (legs, draining, ingest).
 */
export interface RegistryChange {
  serverId: ServerId;
  kind: 'online' | 'offline' | 'heartbeat' | 'socket_opened' | 'socket_closed';
}
export type RegistryListener = (c: RegistryChange) => void | Promise<void>;

export class MediaServerRegistry {
  private readonly log: Logger;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** The broadcaster's stream per server, from the latest heartbeat (in memory: it is live data, not history). */
  private readonly publishers = new Map<ServerId, PublisherReport>();
  /** Open WebSockets per server. */
  private readonly sockets = new Map<ServerId, number>();
  /** Servers whose last WebSocket closed and none reopened since (cleared by a new registration). */
  private readonly closedSockets = new Set<ServerId>();
  /** When each server began to report ingest 'broadcaster' (the most recent one is the origin). */
  private readonly broadcasterSince = new Map<ServerId, number>();
  private readonly listeners = new Set<RegistryListener>();
  private currentOrigin: Origin | null = null;

  constructor(
    private readonly d: { store: Store; bus: EventBus; log: Logger; heartbeatIntervalMs: number; now?: () => number },
  ) {
    this.log = d.log.child({ component: 'registry' });
    this.now = d.now ?? Date.now;
  }

  get heartbeatIntervalMs(): number {
    return this.d.heartbeatIntervalMs;
  }

  start(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => void this.sweepQuietly(), Math.max(25, Math.floor(this.d.heartbeatIntervalMs / 2)));
  }
  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Listeners run in order and are awaited: a heartbeat is answered once its consequences are applied. */
  onChange(fn: RegistryListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async register(r: { serverId: ServerId; ipAddress: string; port: number; url?: string; maxLegs?: number }): Promise<MediaServerRecord> {
    const now = this.now();
    const rec: MediaServerRecord = {
      id: r.serverId,
      ip: r.ipAddress,
      port: r.port,
      state: 'online',
      registeredAt: now,
      lastHeartbeat: now,
      publisherOnline: false,
      legs: [],
      url: (r.url ?? `http://${r.ipAddress.includes(':') ? `[${r.ipAddress}]` : r.ipAddress}:${r.port}`).replace(/\/+$/, ''),
      ...(r.maxLegs !== undefined ? { maxLegs: r.maxLegs } : {}),
      draining: false,
    };
    this.publishers.delete(r.serverId);
    this.broadcasterSince.delete(r.serverId);
    // A registration is a (new) process: what its predecessor's socket did no longer counts.
    this.closedSockets.delete(r.serverId);
    const prev = await this.d.store.upsertMediaServer(rec);
    this.log.info({ serverId: r.serverId, url: rec.url, maxLegs: r.maxLegs, reregistered: !!prev }, 'media_server.registered');
    if (!prev || prev.state === 'offline') this.announce('media_server_online', r.serverId, now);
    await this.notify({ serverId: r.serverId, kind: 'online' });
    return rec;
  }

  async heartbeat(h: {
    serverId: ServerId;
    publisherOnline?: boolean;
    legs?: LegRecord[];
    publisher?: PublisherReport;
    stopping?: boolean;
    draining?: boolean;
    ingest?: IngestKind;
  }): Promise<MediaServerRecord> {
    const now = this.now();
    const prev = await this.d.store.getMediaServer(h.serverId);
    if (!prev) throw new NotFound('unknown media server: register again');
    let rec = await this.d.store.updateMediaServerHeartbeat(h.serverId, now, h.publisherOnline, h.legs);
    if (!rec) throw new NotFound('unknown media server: register again');
    if (h.draining !== undefined || h.ingest !== undefined) {
      rec = (await this.d.store.updateMediaServerState(h.serverId, { ...(h.draining !== undefined ? { draining: h.draining } : {}), ...(h.ingest ? { ingest: h.ingest } : {}) })) ?? rec;
      if (h.draining && !prev.draining) this.log.info({ serverId: h.serverId }, 'media_server.draining');
    }
    if (h.ingest === 'broadcaster' && !this.broadcasterSince.has(h.serverId)) this.broadcasterSince.set(h.serverId, now);
    else if (h.ingest !== undefined && h.ingest !== 'broadcaster') this.broadcasterSince.delete(h.serverId);
    if (h.publisher && h.publisherOnline !== false && !h.stopping) this.publishers.set(h.serverId, h.publisher);
    else this.publishers.delete(h.serverId);
    if (h.stopping) {
      // A clean shutdown: offline now, not after 3 missed intervals, so the dashboard and the others know at once.
      const off = (await this.d.store.markMediaServerOffline(h.serverId)) ?? rec;
      this.broadcasterSince.delete(h.serverId);
      this.log.info({ serverId: h.serverId }, 'media_server.stopped');
      if (prev.state === 'online') this.announce('media_server_offline', h.serverId, now);
      await this.notify({ serverId: h.serverId, kind: 'offline' });
      return off;
    }
    if (prev.state === 'offline') {
      this.log.info({ serverId: h.serverId }, 'media_server.online');
      this.announce('media_server_online', h.serverId, now);
      await this.notify({ serverId: h.serverId, kind: 'online' });
    } else if (h.draining === false && prev.draining) {
      // It stopped draining: ready for stages again, as if it had just come online.
      this.log.info({ serverId: h.serverId }, 'media_server.drain_cancelled');
      await this.notify({ serverId: h.serverId, kind: 'online' });
    } else await this.notify({ serverId: h.serverId, kind: 'heartbeat' });
    return rec;
  }

  async list(): Promise<MediaServerRecord[]> {
    return this.d.store.listMediaServers();
  }

  /** The broadcaster's stream as server `id` last reported it; none while it is offline or silent. */
  publisher(id: ServerId): PublisherReport | undefined {
    return this.publishers.get(id);
  }

  /** Its WebSocket closed and none is open: it may be alive, but it cannot hear us. */
  isSocketClosed(id: ServerId): boolean {
    return this.closedSockets.has(id);
  }

  /** The Media Server holding the broadcaster, as last announced (null: none). */
  get origin(): Origin | null {
    return this.currentOrigin;
  }

  /** A Media Server's WebSocket opened (`?serverId=`). */
  async socketOpened(id: ServerId): Promise<void> {
    this.sockets.set(id, (this.sockets.get(id) ?? 0) + 1);
    const wasClosed = this.closedSockets.delete(id);
    if (wasClosed) this.log.info({ serverId: id }, 'media_server.socket_reopened');
    await this.notify({ serverId: id, kind: 'socket_opened' });
  }

  /** A Media Server's WebSocket closed: when it was its last one, it is suspect at once (kill -9 closes it). */
  async socketClosed(id: ServerId): Promise<void> {
    const n = (this.sockets.get(id) ?? 1) - 1;
    if (n > 0) {
      this.sockets.set(id, n);
      return;
    }
    this.sockets.delete(id);
    const known = await this.d.store.getMediaServer(id);
    if (!known || known.state !== 'online') return;
    this.closedSockets.add(id);
    this.log.warn({ serverId: id }, 'media_server.socket_closed');
    await this.notify({ serverId: id, kind: 'socket_closed' });
  }

  /** The timer's sweep: a store that fails (Redis away) is tried again on the next tick. */
  private readonly sweepQuietly = timerTask(
    () => this.sweep(),
    (err) => this.log.warn({ err: err.message }, 'media_server.sweep_failed'),
  );

  /** Marks offline the servers silent for 3 intervals (atomic in the store: with several API Servers, one announces each). */
  async sweep(): Promise<MediaServerRecord[]> {
    const now = this.now();
    const gone = await this.d.store.markStaleMediaServersOffline(now - 3 * this.d.heartbeatIntervalMs);
    for (const s of gone) {
      this.publishers.delete(s.id);
      this.broadcasterSince.delete(s.id);
      this.log.warn({ serverId: s.id, lastHeartbeat: new Date(s.lastHeartbeat).toISOString() }, 'media_server.offline');
      this.announce('media_server_offline', s.id, now);
    }
    for (const s of gone) await this.notify({ serverId: s.id, kind: 'offline' });
    if (gone.length === 0) await this.updateOrigin();
    return gone;
  }

  private async notify(c: RegistryChange): Promise<void> {
    await this.updateOrigin();
    for (const fn of this.listeners) {
      try {
        await fn(c);
      } catch (err) {
        this.log.error({ serverId: c.serverId, kind: c.kind, err: (err as Error).message }, 'media_server.listener_failed');
      }
    }
  }

  /**
   * The origin: the online server reporting ingest 'broadcaster' whose WebSocket is not closed (draining or not:
   * it still holds the broadcaster); the most recent one when several do. Announced when it changes.
   */
  private async updateOrigin(): Promise<void> {
    let best: MediaServerRecord | undefined;
    let bestSince = -Infinity;
    for (const m of await this.d.store.listMediaServers()) {
      if (m.state !== 'online' || m.ingest !== 'broadcaster' || this.closedSockets.has(m.id)) continue;
      const since = this.broadcasterSince.get(m.id) ?? m.lastHeartbeat;
      if (since > bestSince || (since === bestSince && best && m.id > best.id)) {
        best = m;
        bestSince = since;
      }
    }
    const next: Origin | null = best ? { serverId: best.id, url: best.url ?? `http://${best.ip}:${best.port}` } : null;
    const cur = this.currentOrigin;
    if (cur?.serverId === next?.serverId && cur?.url === next?.url) return;
    this.currentOrigin = next;
    this.log.info({ serverId: next?.serverId ?? null, previous: cur?.serverId ?? null }, 'origin.changed');
    this.d.bus.publish({ type: 'origin_changed', data: { origin: next, timestamp: new Date(this.now()).toISOString() } });
  }

  private announce(type: 'media_server_online' | 'media_server_offline', serverId: ServerId, at: number): void {
    this.d.bus.publish({ type, data: { serverId, timestamp: new Date(at).toISOString() } });
  }
}
