/** Media Servers: register, heartbeat, and offline after 3 missed heartbeats — each change announced. */
import { NotFound, type PublisherReport, type ServerId } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { LegRecord, MediaServerRecord, Store } from '../store/store.js';
import type { EventBus } from './EventBus.js';

export class MediaServerRegistry {
  private readonly log: Logger;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly now: () => number;
  /** The broadcaster's stream per server, from the latest heartbeat (in memory: it is live data, not history). */
  private readonly publishers = new Map<ServerId, PublisherReport>();

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

  async register(r: { serverId: ServerId; ipAddress: string; port: number }): Promise<MediaServerRecord> {
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
    };
    this.publishers.delete(r.serverId);
    const prev = await this.d.store.upsertMediaServer(rec);
    this.log.info({ serverId: r.serverId, ip: r.ipAddress, port: r.port, reregistered: !!prev }, 'media_server.registered');
    if (!prev || prev.state === 'offline') this.announce('media_server_online', r.serverId, now);
    return rec;
  }

  async heartbeat(h: { serverId: ServerId; publisherOnline?: boolean; legs?: LegRecord[]; publisher?: PublisherReport; stopping?: boolean }): Promise<MediaServerRecord> {
    const now = this.now();
    const prev = await this.d.store.getMediaServer(h.serverId);
    if (!prev) throw new NotFound('unknown media server: register again');
    const rec = await this.d.store.updateMediaServerHeartbeat(h.serverId, now, h.publisherOnline, h.legs);
    if (!rec) throw new NotFound('unknown media server: register again');
    if (h.publisher && h.publisherOnline !== false && !h.stopping) this.publishers.set(h.serverId, h.publisher);
    else this.publishers.delete(h.serverId);
    if (h.stopping) {
      // A clean shutdown: offline now, not after 3 missed intervals, so the dashboard and the others know at once.
      const off = (await this.d.store.markMediaServerOffline(h.serverId)) ?? rec;
      this.log.info({ serverId: h.serverId }, 'media_server.stopped');
      if (prev.state === 'online') this.announce('media_server_offline', h.serverId, now);
      return off;
    }
    if (prev.state === 'offline') {
      this.log.info({ serverId: h.serverId }, 'media_server.online');
      this.announce('media_server_online', h.serverId, now);
    }
    return rec;
  }

  list(): Promise<MediaServerRecord[]> {
    return this.d.store.listMediaServers();
  }

  /** The broadcaster's stream as server `id` last reported it; none while it is offline or silent. */
  publisher(id: ServerId): PublisherReport | undefined {
    return this.publishers.get(id);
  }

  /** The timer's sweep: a store that fails (Redis away) is tried again on the next tick. */
  private async sweepQuietly(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.sweep();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'media_server.sweep_failed');
    } finally {
      this.sweeping = false;
    }
  }

  /** Marks offline the servers silent for 3 intervals (atomic in the store: with several API Servers, one announces each). */
  async sweep(): Promise<MediaServerRecord[]> {
    const now = this.now();
    const gone = await this.d.store.markStaleMediaServersOffline(now - 3 * this.d.heartbeatIntervalMs);
    for (const s of gone) {
      this.publishers.delete(s.id);
      this.log.warn({ serverId: s.id, lastHeartbeat: new Date(s.lastHeartbeat).toISOString() }, 'media_server.offline');
      this.announce('media_server_offline', s.id, now);
    }
    return gone;
  }

  private announce(type: 'media_server_online' | 'media_server_offline', serverId: ServerId, at: number): void {
    this.d.bus.publish({ type, data: { serverId, timestamp: new Date(at).toISOString() } });
  }
}
