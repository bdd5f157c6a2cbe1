/**
 * The periodic RTCP reports (RFC 3550 §6.4): a receiver report to the source about what arrived, and a sender report
 * to every sink that maps its RTP timestamps to wall-clock time (lip sync) and counts what it was sent.
 */
import { buildReceiverReport, buildSenderReport, concatRtcp, ntpFromUnixMs, type ReportBlock } from '../codec/rtcp.js';
import type { Ingress } from './ingress.js';
import type { SinkMunger } from './munger.js';
import type { Sink } from './sink.js';
import type { SourcePort } from './types.js';

export function receiverReportToSource(source: SourcePort, ssrc: number, ingresses: readonly Ingress[], now: number): void {
  const blocks: ReportBlock[] = [];
  for (const ing of ingresses) {
    const b = ing.reportBlock(now);
    if (b) blocks.push(b);
  }
  if (blocks.length === 0) return;
  try {
    source.sendRtcp(buildReceiverReport({ ssrc, reports: blocks }));
  } catch {
    // counted nowhere: the transport reports its own failures
  }
}

export function senderReportsToSinks(sinks: Iterable<Sink>, audioIn: Ingress, videoIn: Ingress, ntpOffset: number, now: number): void {
  const ntp = ntpFromUnixMs(now);
  for (const sink of sinks) {
    let a: Uint8Array | undefined;
    let v: Uint8Array | undefined;
    if (sink.audio && sink.audio.packets > 0) a = senderReport(sink.audio, audioIn, ntp, ntpOffset, now);
    if (sink.video && sink.video.packets > 0) v = senderReport(sink.video, videoIn, ntp, ntpOffset, now);
    if (!a && !v) continue;
    try {
      sink.port.sendRtcp(a && v ? concatRtcp([a, v]) : (a ?? v)!);
    } catch {
      if (sink.video) sink.video.sendErrors++;
    }
  }
}

function senderReport(m: SinkMunger, ing: Ingress, ntp: { sec: number; frac: number }, ntpOffset: number, now: number): Uint8Array {
  m.srSent++;
  const rtp = ing.routerTsAt(now, ntpOffset) + m.tsOff;
  return buildSenderReport({
    ssrc: m.ssrc,
    ntpSec: ntp.sec,
    ntpFrac: ntp.frac,
    rtpTimestamp: Math.round(rtp) >>> 0,
    packetCount: m.packets,
    octetCount: m.octets,
  });
}
