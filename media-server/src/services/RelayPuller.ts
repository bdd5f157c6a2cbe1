/**
 * The puller's side of the relay: while this Media Server has stage legs but not the broadcaster, it pulls the
 * broadcast from the origin (the Media Server that has it) and makes that relay session its Router's source — so it
 * keeps its own keyframe cache and sends its own NACKs and PLIs toward the origin, and the Router keeps sequence
 * numbers and timestamps continuous for every stage across a change of source.
 *
 * `target()` says whom to pull from now (null: no one). A new origin is pulled make-before-break: the new relay
 * session becomes the source once it is connected, then the old one is stopped. A failed or unreachable origin is
 * retried with jittered exponential backoff; a change of target retries at once.
 */
import type { Origin } from '@stagecast/protocol';
import { MEDIA_ROUTES } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { IngestSession, LegConnectionState, RelayConnection, RelayConnector } from '../media/ports.js';
import { backoffDelay } from './backoff.js';

export interface RelayFeed {
  onPublisherConnected(session: IngestSession, kind: 'relay'): void;
  onPublisherDisconnected(session?: IngestSession): void;
}

export interface RelayPullerDeps {
  /** Whom to pull from now: the origin while this server has legs and not the broadcaster; else null. */
  target(): Origin | null;
  connect: RelayConnector;
  feed: RelayFeed;
  /** MEDIA_SERVER_SECRET, the relay endpoint's Bearer. */
  secret: string;
  log: Logger;
  /** HTTP timeout of the relay POST. */
  requestTimeoutMs: number;
  /** From the 201 to 'connected'. */
  connectTimeoutMs: number;
  backoff: { baseMs: number; capMs: number };
  bindAddress?: string;
  random?: () => number;
  /** The relay started or stopped feeding the router. */
  onChange?: () => void;
}

export type RelayState = 'idle' | 'connecting' | 'pulling' | 'retrying';

export interface RelayPullStats {
  state: RelayState;
  /** The origin pulled from (or being connected to). */
  origin?: string;
  originUrl?: string;
  since?: string;
  /** RTP packets of the current relay session. */
  packetsReceived: number;
  /** Relay sessions started, failures, retries after a failure, and changes of origin. */
  pulls: number;
  failures: number;
  reconnects: number;
  switches: number;
  lastError?: string;
}

interface Pull {
  id: string;
  origin: Origin;
  conn?: RelayConnection;
  state: 'connecting' | 'connected' | 'closed';
  timer?: NodeJS.Timeout;
  connectedAt: number;
}

export class RelayPuller {
  private readonly log: Logger;
  private current: Pull | undefined;
  private next: Pull | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryFor: string | undefined;
  private streak = 0;
  private seq = 0;
  private pulls = 0;
  private failures = 0;
  private reconnects = 0;
  private switches = 0;
  private lastError: string | undefined;
  private stopped = false;

  constructor(private readonly d: RelayPullerDeps) {
    this.log = d.log.child({ component: 'relay-puller' });
  }

  /** Brings the pull in line with target(): start, switch or stop. Cheap when nothing changed; call it on any change. */
  evaluate(): void {
    if (this.stopped) return;
    const target = this.d.target();
    if (!target) {
      this.clearRetry();
      if (this.next) this.end(this.next, 'not wanted');
      if (this.current) this.end(this.current, 'not wanted');
      return;
    }
    const active = this.next ?? this.current;
    if (active && sameOrigin(active.origin, target)) return;
    if (this.retryTimer && this.retryFor === key(target)) return;
    this.clearRetry();
    if (this.next) this.end(this.next, 'origin changed');
    if (this.current) this.switches++;
    void this.start(target, false);
  }

  private async start(origin: Origin, retry: boolean): Promise<void> {
    const pull: Pull = { id: `relay${++this.seq}`, origin, state: 'connecting', connectedAt: NaN };
    this.next = pull;
    this.pulls++;
    if (retry) this.reconnects++;
    this.log.info({ origin: origin.serverId, relayId: pull.id, retry }, 'relay.connecting');
    let conn: RelayConnection;
    try {
      conn = await this.d.connect({
        id: pull.id,
        url: origin.url.replace(/\/+$/, '') + MEDIA_ROUTES.relay,
        token: this.d.secret,
        timeoutMs: this.d.requestTimeoutMs,
        ...(this.d.bindAddress ? { bindAddress: this.d.bindAddress } : {}),
      });
    } catch (err) {
      this.fail(pull, err instanceof Error ? err.message : String(err));
      return;
    }
    if (pull.state === 'closed' || this.stopped) {
      void conn.stop();
      return;
    }
    pull.conn = conn;
    conn.on('state', (s: LegConnectionState) => {
      if (s === 'connected') this.promote(pull);
      else if (s === 'failed' || s === 'closed') this.fail(pull, `transport ${s}`);
    });
    conn.on('closed', (reason: string) => this.fail(pull, reason));
    pull.timer = setTimeout(() => this.fail(pull, 'relay did not connect in time'), this.d.connectTimeoutMs);
    pull.timer.unref?.();
    if (conn.state === 'connected') this.promote(pull);
  }

  /** The new relay session is connected: it becomes the router's source, then the one it replaces is stopped. */
  private promote(pull: Pull): void {
    if (this.next !== pull || pull.state !== 'connecting' || !pull.conn) return;
    clearTimeout(pull.timer);
    this.next = undefined;
    pull.state = 'connected';
    pull.connectedAt = Date.now();
    this.streak = 0;
    const old = this.current;
    this.current = pull;
    this.d.feed.onPublisherConnected(pull.conn, 'relay');
    this.log.info({ origin: pull.origin.serverId, relayId: pull.id, replaced: old?.id }, 'relay.connected');
    if (old) this.end(old, 'replaced by a relay from the new origin');
    this.d.onChange?.();
  }

  private fail(pull: Pull, reason: string): void {
    if (pull.state === 'closed' || this.stopped) return;
    const wasFeeding = this.current === pull;
    this.lastError = reason;
    this.failures++;
    // The retry is armed before the feed hears of the loss: its change callback re-evaluates, and must not start
    // another pull at once.
    const delay = backoffDelay(this.streak++, { ...this.d.backoff, random: this.d.random ?? Math.random });
    this.clearRetry();
    this.retryFor = key(pull.origin);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryFor = undefined;
      if (this.stopped) return;
      const target = this.d.target();
      if (target && !(this.next ?? this.current)) void this.start(target, true);
      else this.evaluate();
    }, delay);
    this.retryTimer.unref?.();
    this.log.warn({ origin: pull.origin.serverId, relayId: pull.id, reason, retryInMs: delay }, 'relay.failed');
    this.end(pull, reason);
    if (wasFeeding) this.d.onChange?.();
  }

  /** Stops a pull; if it fed the router, the router loses its source. */
  private end(pull: Pull, reason: string): void {
    if (pull.state === 'closed') return;
    const fed = this.current === pull;
    pull.state = 'closed';
    clearTimeout(pull.timer);
    if (this.next === pull) this.next = undefined;
    if (fed) {
      this.current = undefined;
      if (pull.conn) this.d.feed.onPublisherDisconnected(pull.conn);
      this.log.info({ origin: pull.origin.serverId, relayId: pull.id, reason }, 'relay.stopped');
      this.d.onChange?.();
    }
    void pull.conn?.stop();
  }

  private clearRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryFor = undefined;
  }

  /** Pulling from `serverId` (connected), if any. */
  get pullingFrom(): string | undefined {
    return this.current?.origin.serverId;
  }

  stats(): RelayPullStats {
    const p = this.current ?? this.next;
    const state: RelayState = this.current ? 'pulling' : this.next ? 'connecting' : this.retryTimer ? 'retrying' : 'idle';
    const s: RelayPullStats = {
      state,
      packetsReceived: this.current?.conn?.packetsReceived ?? 0,
      pulls: this.pulls,
      failures: this.failures,
      reconnects: this.reconnects,
      switches: this.switches,
    };
    if (p) {
      s.origin = p.origin.serverId;
      s.originUrl = p.origin.url;
    }
    if (this.current && this.current.connectedAt === this.current.connectedAt) s.since = new Date(this.current.connectedAt).toISOString();
    if (this.lastError) s.lastError = this.lastError.slice(0, 200);
    return s;
  }

  /** Stops pulling for good. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.clearRetry();
    if (this.next) this.end(this.next, 'media server stopping');
    if (this.current) this.end(this.current, 'media server stopping');
  }
}

const key = (o: Origin) => `${o.serverId} ${o.url}`;
const sameOrigin = (a: Origin, b: Origin) => a.serverId === b.serverId && a.url === b.url;
