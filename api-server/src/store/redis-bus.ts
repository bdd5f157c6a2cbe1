/**
 * Carries announcements between API Servers over Redis pub/sub: each one publishes what its services announce
 * (tagged with its own id) and delivers what the others published to its own Media Servers' sockets, never its own
 * twice. Pub/sub keeps nothing for a subscriber that is away, so each time the subscription comes back after a cut
 * (a Redis restart, a network split) the bus is told to resync: the edge then makes its Media Servers sync again.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import { ServerMessageSchema, type ServerMessage } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import { redisOptions } from './redis.js';

/** What the relay needs of the announcement bus (services/EventBus.ts). */
export interface RelayedBus {
  setRelay(fn: ((msg: ServerMessage) => void) | undefined): void;
  /** Delivers to this API Server's own listeners only. */
  deliver(msg: ServerMessage): void;
  /** Announcements may have been missed: the listeners' clients sync again. */
  resync(): void;
}

export class RedisAnnouncementRelay {
  readonly originId = randomBytes(8).toString('hex');
  private sub: Redis | undefined;
  private readonly log: Logger;
  private everReady = false;
  /** Started while Redis was away: sockets opened meanwhile could not sync, so the first subscription resyncs too. */
  private startedUnready = false;
  private publishFailures = 0;
  private readonly counts: Counter<'event'> | undefined;

  constructor(private readonly d: { url: string; channel: string; bus: RelayedBus; publisher: Redis; log: Logger; registry?: Registry }) {
    this.log = d.log.child({ component: 'relay' });
    this.counts = d.registry
      ? new Counter({
          name: 'stagecast_relay_events_total',
          help: 'Announcements between API Servers (event: sent, received, publish_failed, resync = Media Server sockets told to sync again)',
          labelNames: ['event'],
          registers: [d.registry],
        })
      : undefined;
  }

  /** Subscribes (waiting for Redis at most `timeoutMs`; the subscription comes by itself later otherwise). */
  async start(timeoutMs = 5000): Promise<void> {
    if (this.sub) return;
    // The subscriber keeps its SUBSCRIBE queued while offline and resubscribes after every reconnect.
    const { commandTimeout: _none, ...base } = redisOptions();
    const sub = new Redis(this.d.url, { ...base, enableOfflineQueue: true, autoResubscribe: true });
    this.sub = sub;
    sub.on('error', () => undefined);
    sub.on('ready', () => {
      if (this.everReady || this.startedUnready) {
        this.log.warn('relay.resubscribed');
        this.counts?.inc({ event: 'resync' });
        this.d.bus.resync();
      }
      this.everReady = true;
    });
    sub.on('message', (_channel: string, raw: string) => this.receive(raw));
    this.d.bus.setRelay((msg) => this.send(msg));
    void sub.connect().catch(() => undefined);
    await Promise.race([sub.subscribe(this.d.channel).catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    if (!this.everReady) this.startedUnready = true;
  }

  async stop(): Promise<void> {
    this.d.bus.setRelay(undefined);
    const sub = this.sub;
    this.sub = undefined;
    if (sub) await sub.quit().catch(() => sub.disconnect());
  }

  private send(msg: ServerMessage): void {
    this.d.publisher.publish(this.d.channel, JSON.stringify({ from: this.originId, msg })).then(
      () => {
        this.counts?.inc({ event: 'sent' });
        if (this.publishFailures) this.log.info({ failed: this.publishFailures }, 'relay.publish_recovered');
        this.publishFailures = 0;
      },
      (err: Error) => {
        this.counts?.inc({ event: 'publish_failed' });
        // The other API Servers miss it; their Media Servers catch up at their next sync.
        if (this.publishFailures++ === 0) this.log.warn({ type: msg.type, err: err.message }, 'relay.publish_failed');
      },
    );
  }

  private receive(raw: string): void {
    let env: { from?: unknown; msg?: unknown };
    try {
      env = JSON.parse(raw) as typeof env;
    } catch {
      return;
    }
    if (env.from === this.originId) return;
    const parsed = ServerMessageSchema.safeParse(env.msg);
    if (!parsed.success) {
      this.log.warn({ issues: parsed.error.issues.length }, 'relay.bad_message');
      return;
    }
    this.counts?.inc({ event: 'received' });
    this.d.bus.deliver(parsed.data);
  }
}
