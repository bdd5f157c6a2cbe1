/**
 * Registration and heartbeats: register once, then heartbeat on the interval the API Server names (or a fixed one).
 * A 404 on heartbeat means the API Server forgot us (a restart with a new store): register again. Until registered,
 * the loop retries registration every ≤2 s.
 */
import {
  API_ROUTES,
  HeartbeatResponseSchema,
  RegisterResponseSchema,
  type HeartbeatRequest,
  type MediaServerStats,
  type PublisherReport,
  type StageArn,
} from '@stagecast/protocol';
import type { z } from 'zod';
import type { Logger } from '../../logger.js';
import { ApiRequestError, type ApiHttp } from './http.js';

export type LegState = 'connecting' | 'connected' | 'failed' | 'closed';
export interface HeartbeatPayload {
  publisherOnline: boolean;
  legs: { stageArn: StageArn; state: LegState }[];
  /** The broadcaster's measured stream, for the API Server's dashboard. */
  publisher?: PublisherReport;
  /** SIGTERM received: the API Server moves every stage of this server elsewhere. */
  draining?: boolean;
  /** Where this server's broadcast comes from (the origin holds the broadcaster; others pull a relay from it). */
  ingest?: IngestKind;
}

export type IngestKind = NonNullable<HeartbeatRequest['ingest']>;

/** The heartbeat's view of the broadcaster, from the Media Server's stats: nothing while no one publishes. */
export function publisherReport(s: Pick<MediaServerStats, 'publisher' | 'stream'>): PublisherReport | undefined {
  if (!s.publisher.online) return undefined;
  const st = s.stream;
  return {
    bitrateBps: s.publisher.bitrateBps,
    ...(st?.width !== undefined ? { width: st.width } : {}),
    ...(st?.height !== undefined ? { height: st.height } : {}),
    ...(st?.frameRate !== undefined ? { frameRate: st.frameRate } : {}),
    ...(st?.profile !== undefined ? { profile: st.profile.slice(0, 64) } : {}),
  };
}

export type HeartbeatState = 'ok' | 'failing' | 'unregistered';

export interface RegistrationOptions {
  serverId: string;
  advertisedIp: string;
  port: number;
  /** Base URL others reach us at (PUBLIC_URL); default http://advertisedIp:port. */
  publicUrl?: string;
  /** Most stage legs this server takes (MAX_LEGS). */
  maxLegs?: number;
  /** An immediate heartbeat (nudge()) waits this long, so a burst of changes sends one. Default 50 ms. */
  nudgeDelayMs?: number;
  /** Fixed heartbeat interval; when undefined, the one the register response names. */
  heartbeatIntervalMs?: number;
  log: Logger;
  now: () => number;
  /** Called after every successful registration. */
  onRegistered(heartbeatIntervalMs: number): void;
}

export class Registration {
  port: number;
  hbInterval: number;
  registered = false;
  lastAckAt = NaN;
  hbState: HeartbeatState = 'unregistered';
  hbFailures = 0;
  reRegistrations = 0;
  private hbTimer: NodeJS.Timeout | undefined;
  private heartbeatSource: () => HeartbeatPayload = () => ({ publisherOnline: false, legs: [] });
  private stopped = false;
  private nudgeTimer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private nudgeAgain = false;
  nudges = 0;

  constructor(
    private readonly http: ApiHttp,
    private readonly o: RegistrationOptions,
  ) {
    this.port = o.port;
    this.hbInterval = o.heartbeatIntervalMs ?? 10_000;
  }

  /** The base URL we register with: PUBLIC_URL, else http://advertisedIp:port. */
  get url(): string {
    if (this.o.publicUrl) return this.o.publicUrl;
    const ip = this.o.advertisedIp.includes(':') ? `[${this.o.advertisedIp}]` : this.o.advertisedIp;
    return `http://${ip}:${this.port}`;
  }

  /** Registration is fresh: acknowledged by the API Server within the last 3 heartbeat intervals. */
  fresh(): boolean {
    return this.registered && this.o.now() - this.lastAckAt < 3 * this.hbInterval;
  }

  async register(): Promise<void> {
    let res: z.infer<typeof RegisterResponseSchema>;
    try {
      res = await this.http.request(API_ROUTES.register, 'POST', RegisterResponseSchema, {
        serverId: this.o.serverId,
        ipAddress: this.o.advertisedIp,
        port: this.port,
        url: this.url,
        ...(this.o.maxLegs !== undefined ? { maxLegs: this.o.maxLegs } : {}),
      });
    } catch (err) {
      if (err instanceof ApiRequestError && (err.status === 401 || err.status === 403)) this.http.logRefused('register', err.status);
      throw err;
    }
    this.http.accepted();
    if (this.o.heartbeatIntervalMs === undefined) this.hbInterval = res.heartbeatIntervalMs;
    this.registered = true;
    this.lastAckAt = this.o.now();
    this.setHbState('ok');
    this.o.log.info({ heartbeatIntervalMs: this.hbInterval, reRegistrations: this.reRegistrations }, 'registered');
    this.o.onRegistered(this.hbInterval);
  }

  setHeartbeatSource(fn: () => HeartbeatPayload): void {
    this.heartbeatSource = fn;
  }

  heartbeat(payload?: HeartbeatPayload): Promise<void> {
    const run = this.sendHeartbeat(payload ?? this.heartbeatSource());
    this.inflight = run;
    void run
      .catch(() => undefined)
      .finally(() => {
        if (this.inflight === run) this.inflight = undefined;
        // A change while this heartbeat was on its way: it may not be in it, send another.
        if (this.nudgeAgain && !this.inflight) {
          this.nudgeAgain = false;
          this.nudge();
        }
      });
    return run;
  }

  /**
   * An immediate heartbeat, soon: the ingest kind changed or a leg connected, and a handover at the API Server
   * completes on that news. Debounced (a burst of changes sends one heartbeat); one in flight is followed by another.
   */
  nudge(): void {
    if (this.stopped || !this.registered) return;
    if (this.inflight) {
      this.nudgeAgain = true;
      return;
    }
    if (this.nudgeTimer) return;
    this.nudgeTimer = setTimeout(() => {
      this.nudgeTimer = undefined;
      if (this.stopped || !this.registered) return;
      this.nudges++;
      void this.heartbeat().catch(() => undefined);
    }, this.o.nudgeDelayMs ?? 50);
    this.nudgeTimer.unref?.();
  }

  private async sendHeartbeat(payload: HeartbeatPayload): Promise<void> {
    const body: HeartbeatRequest = {
      serverId: this.o.serverId,
      publisherOnline: payload.publisherOnline,
      legs: payload.legs,
      ...(payload.publisher ? { publisher: payload.publisher } : {}),
      ...(payload.draining ? { draining: true } : {}),
      ...(payload.ingest ? { ingest: payload.ingest } : {}),
    };
    try {
      const res = await this.http.request(API_ROUTES.heartbeat, 'POST', HeartbeatResponseSchema, body);
      if (this.o.heartbeatIntervalMs === undefined) this.hbInterval = res.heartbeatIntervalMs;
      this.lastAckAt = this.o.now();
      this.setHbState('ok');
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) {
        this.registered = false;
        this.setHbState('unregistered');
        this.reRegistrations++;
        this.o.log.warn('heartbeat.unknown_server');
        await this.register();
        return;
      }
      this.hbFailures++;
      this.setHbState('failing');
      throw err;
    }
  }

  start(): void {
    if (this.hbTimer || this.stopped) return;
    const loop = async (): Promise<void> => {
      try {
        if (!this.registered) await this.register();
        else await this.heartbeat();
      } catch {
        // logged once per state change in the http client and setHbState()
      }
      if (this.stopped) return;
      this.hbTimer = setTimeout(() => void loop(), this.registered ? this.hbInterval : Math.min(this.hbInterval, 2000));
      this.hbTimer.unref?.();
    };
    this.hbTimer = setTimeout(() => void loop(), this.hbInterval);
    this.hbTimer.unref?.();
  }

  stopHeartbeat(): void {
    clearTimeout(this.hbTimer);
    this.hbTimer = undefined;
  }

  /** A last heartbeat saying we serve nothing, so the API Server knows at once (graceful shutdown). */
  async sendFinal(): Promise<void> {
    if (!this.registered) return;
    try {
      await this.http.request(API_ROUTES.heartbeat, 'POST', HeartbeatResponseSchema, { serverId: this.o.serverId, publisherOnline: false, legs: [], stopping: true });
    } catch {
      // best effort
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.nudgeTimer);
    this.nudgeTimer = undefined;
    this.stopHeartbeat();
  }

  private setHbState(s: HeartbeatState): void {
    if (this.hbState === s) return;
    const prev = this.hbState;
    this.hbState = s;
    if (s === 'failing') this.o.log.warn('heartbeat.failing');
    else if (s === 'ok' && prev === 'failing') this.o.log.info('heartbeat.recovered');
  }
}
