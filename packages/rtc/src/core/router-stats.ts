/** What a Router counts, as its stats() reports it. */
import type { H264StreamReport } from '../codec/h264-inspector.js';
import type { Ingress } from './ingress.js';
import type { NackGenerator } from './nack-generator.js';
import type { PacketStore } from './packet-store.js';
import type { RouterSinkStats } from './sink.js';
import type { SourceStats } from './types.js';

export interface RouterStats {
  source: SourceStats;
  sinks: RouterSinkStats[];
  ingress: { audio: IngressCounters; video: IngressCounters };
  cache: {
    video: ReturnType<PacketStore['footprint']> & { gopPackets: number; gopDegraded: boolean; gopIncomplete: boolean };
    audio: ReturnType<PacketStore['footprint']>;
  };
  keyframeRequestsSent: number;
  /** Keyframe requests asked of the router (sinks' PLIs, losses, new sinks) before coalescing. */
  keyframeRequestsAsked: number;
  replaysRunning: number;
  droppedNoSource: number;
  h264?: H264StreamReport;
}

export interface IngressCounters {
  ssrc?: number;
  packets: number;
  bytes: number;
  lost: number;
  jitterMs: number;
  epochs: number;
  malformed: number;
  /** RTX packets (RFC 4588) unwrapped into the stream. */
  rtxReceived: number;
  /** RTX packets with no payload (bandwidth probes), dropped. */
  rtxPadding: number;
  paddingDropped: number;
  unknownPayloadType: number;
  foreignSsrc: number;
  duplicates: number;
  tooOld: number;
  /** NACK entries sent to the source, packets recovered after a NACK, late without one, and given up on. */
  nacksSent: number;
  recovered: number;
  reordered: number;
  lostForGood: number;
  nackPending: number;
  nackRttMs: number;
  /** The reorder window a missing packet is given before its first NACK (ms). */
  nackReorderMs: number;
}

export function ingressCounters(i: Ingress, n: NackGenerator): IngressCounters {
  const c: IngressCounters = {
    packets: i.packets,
    bytes: i.bytes,
    lost: i.lost(),
    jitterMs: i.jitterMs(),
    epochs: i.epochs,
    malformed: i.malformed,
    rtxReceived: i.rtxReceived,
    rtxPadding: i.rtxPadding,
    paddingDropped: i.paddingDropped,
    unknownPayloadType: i.unknownPayloadType,
    foreignSsrc: i.foreignSsrc,
    duplicates: i.duplicates,
    tooOld: i.tooOld,
    nacksSent: n.nacksSent,
    recovered: n.recovered,
    reordered: n.reordered,
    lostForGood: n.lostForGood,
    nackPending: n.pending,
    nackRttMs: Math.round(n.rttMs * 10) / 10,
    nackReorderMs: Math.round(n.reorderMs * 10) / 10,
  };
  if (i.ssrc >= 0) c.ssrc = i.ssrc;
  return c;
}

