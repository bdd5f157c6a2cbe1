/**
 * One downstream of a Router (a WHEP viewer, a stage leg). Created by `Router.addSink`; the owner
 * passes it every RTCP packet the sink's peer sends (RR, NACK, PLI, FIR, REMB) and closes it when the
 * peer goes away. Closing is idempotent and detaches it from the router.
 */
import type { SinkMunger } from './munger.js';
import type { SinkPort, SinkStats } from './types.js';

/** SinkStats plus the router's own counters for this sink. */
export interface RouterSinkStats extends SinkStats {
  nackMisses: number;
  /** Keyframe-cache replays sent (at join, after a source change, on PLI/FIR). */
  replays: number;
  /** Bitrate the sink's REMB last announced, if any. */
  rembBps?: number;
  sendErrors: number;
}

/** What the Sink needs from its router (kept narrow so the classes stay decoupled). */
export interface SinkHost {
  sinkRtcp(sink: Sink, packet: Uint8Array): void;
  detachSink(sink: Sink): void;
}

export class Sink {
  readonly id: string;
  readonly port: SinkPort;
  readonly audio: SinkMunger | undefined;
  readonly video: SinkMunger | undefined;
  rembBps: number | undefined;
  private host: SinkHost | undefined;

  constructor(host: SinkHost, port: SinkPort, audio: SinkMunger | undefined, video: SinkMunger | undefined) {
    this.host = host;
    this.id = port.id;
    this.port = port;
    this.audio = audio;
    this.video = video;
  }

  get closed(): boolean {
    return this.host === undefined;
  }

  /** RTCP from the sink's peer. Never throws; malformed input is counted and ignored. */
  handleRtcp(packet: Uint8Array): void {
    this.host?.sinkRtcp(this, packet);
  }

  stats(): RouterSinkStats {
    const a = this.audio;
    const v = this.video;
    const main = v && v.packets > 0 ? v : (a ?? v);
    const s: RouterSinkStats = {
      id: this.id,
      packetsSent: (a?.packets ?? 0) + (v?.packets ?? 0),
      bytesSent: (a?.bytes ?? 0) + (v?.bytes ?? 0),
      keyframesSent: v?.keyframes ?? 0,
      nacksReceived: (a?.nacks ?? 0) + (v?.nacks ?? 0),
      retransmitted: (a?.retransmitted ?? 0) + (v?.retransmitted ?? 0),
      plisReceived: v?.plis ?? 0,
      fractionLost: main?.fractionLost ?? 0,
      cumulativeLost: (a?.cumulativeLost ?? 0) + (v?.cumulativeLost ?? 0),
      jitter: main?.jitter ?? 0,
      started: v ? v.started : (a?.started ?? false),
      nackMisses: (a?.nackMisses ?? 0) + (v?.nackMisses ?? 0),
      replays: v?.replays ?? 0,
      sendErrors: (a?.sendErrors ?? 0) + (v?.sendErrors ?? 0),
    };
    const rtt = v?.rttMs ?? a?.rttMs;
    if (rtt !== undefined) s.rttMs = rtt;
    if (this.rembBps !== undefined) s.rembBps = this.rembBps;
    return s;
  }

  close(): void {
    const host = this.host;
    if (!host) return;
    this.host = undefined;
    host.detachSink(this);
  }
}
