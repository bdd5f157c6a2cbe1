/**
 * A broadcaster that stays live the way OBS does with one WHIP URL — the API Server's front door: each session is
 * POSTed there and the 307 followed by hand with the same Authorization (helpers/broadcaster.ts). When the session
 * dies it is dropped without a DELETE (the server is gone) and the front door is POSTed again, with a fresh RTP
 * stream (new SSRCs, sequence numbers and timestamps, as a reconnecting OBS sends), backing off 250 ms → 2 s.
 *
 * A session is dead when its peer leaves 'connected', or when the server's RTCP stops for `silenceMs`: the Media
 * Server's router sends the broadcaster a receiver report once a second. ICE consent alone would take libjuice ~30 s
 * to notice a SIGKILLed server on loopback (no ICMP reaches an unconnected UDP socket).
 *
 * API
 *   const live = await ReconnectingBroadcaster.start({ url: sys.frontDoorUrl, token })
 *   live.current · live.sessions                   // the live Broadcaster; every session: url, publishedAt, endedAt, why
 *   live.reconnects · live.lastLostAt · live.lastRecoveredAt
 *   await live.waitForSession(n, timeoutMs)        // until the n-th session (1-based) is publishing
 *   await live.stop()                              // DELETE the live session + close; idempotent
 */
import { Broadcaster, type BroadcasterOptions } from './broadcaster.js';
import { waitFor } from './wait.js';

export interface ReconnectingOptions extends BroadcasterOptions {
  /** No RTCP from the server for this long ends the session (ms). Default 3000. */
  silenceMs?: number;
}

export interface SessionRecord {
  /** Where the session was answered (the Media Server's /whip after the front door's 307). */
  url: string;
  publishedAt: number;
  endedAt?: number;
  why?: string;
}

export class ReconnectingBroadcaster {
  current: Broadcaster | undefined;
  readonly sessions: SessionRecord[] = [];
  reconnects = 0;
  failedAttempts = 0;
  /** ms epoch the last session was found dead, and when the next one was publishing. */
  lastLostAt = NaN;
  lastRecoveredAt = NaN;
  private readonly timer: NodeJS.Timeout;
  private stopped: Promise<void> | undefined;
  private reconnecting = false;
  private seed: number;
  /** Every session's Broadcaster, the live one last. */
  private readonly all: Broadcaster[] = [];

  private constructor(
    readonly o: ReconnectingOptions,
    first: Broadcaster,
  ) {
    this.seed = o.seed ?? 1;
    this.adopt(first);
    this.timer = setInterval(() => this.check(), 100);
  }

  static async start(o: ReconnectingOptions): Promise<ReconnectingBroadcaster> {
    return new ReconnectingBroadcaster(o, await Broadcaster.publish(o));
  }

  /** Frames sent over every session. */
  get framesSent(): number {
    return this.all.reduce((n, b) => n + b.framesSent, 0);
  }

  private adopt(b: Broadcaster): void {
    this.current = b;
    this.all.push(b);
    this.sessions.push({ url: b.url, publishedAt: b.publishedAt });
  }

  private check(): void {
    const b = this.current;
    if (!b || this.reconnecting || this.stopped) return;
    const heardAt = Math.max(b.publishedAt, b.lastRtcpAt === b.lastRtcpAt ? b.lastRtcpAt : 0);
    const silence = this.o.silenceMs ?? 3000;
    if (b.state !== 'connected') void this.reconnect(`peer ${b.state}`);
    else if (Date.now() - heardAt > silence) void this.reconnect(`no RTCP for ${silence} ms`);
  }

  private async reconnect(why: string): Promise<void> {
    this.reconnecting = true;
    this.lastLostAt = Date.now();
    const rec = this.sessions[this.sessions.length - 1]!;
    rec.endedAt = this.lastLostAt;
    rec.why = why;
    this.current?.crash();
    this.current = undefined;
    let backoff = 250;
    while (!this.stopped) {
      try {
        const b = await Broadcaster.publish({ ...this.o, seed: ++this.seed }, 8000);
        if (this.stopped) {
          await b.stop();
          break;
        }
        this.reconnects++;
        this.lastRecoveredAt = Date.now();
        this.adopt(b);
        break;
      } catch {
        this.failedAttempts++;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(2000, backoff * 2);
      }
    }
    this.reconnecting = false;
  }

  waitForSession(n: number, timeoutMs = 20_000): Promise<Broadcaster> {
    return waitFor(() => (this.sessions.length >= n && !this.reconnecting ? this.current : undefined), `broadcast session ${n} publishing`, timeoutMs, 50);
  }

  /** The longest stretch without a frame SENT inside [from, to], over every session. */
  maxSendGapMs(from: number, to: number): number {
    const times = this.all.flatMap((b) => b.sentTimes).sort((a, b) => a - b);
    let prev = from;
    let max = 0;
    for (const t of times) {
      if (t <= from) continue;
      if (t > to) break;
      max = Math.max(max, t - prev);
      prev = t;
    }
    return Math.max(max, to - prev);
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      clearInterval(this.timer);
      await this.current?.stop();
      for (const b of this.all) b.crash();
    })();
    return this.stopped;
  }
}
