/**
 * Keyframe requests toward the publisher (RFC 4585 PLI, or RFC 5104 FIR when 'ccm fir' was negotiated), coalesced:
 * however many sinks ask, and however many losses need repairing, the publisher is asked at most once per interval.
 * A request that falls inside the interval stays pending and goes out as soon as the interval has passed (checked on
 * the next video packet and on every tick).
 */
import { buildFir, buildPli } from '../codec/rtcp.js';
import type { SourcePort, StreamParams } from './types.js';

export class KeyframeRequester {
  private pendingFlag = false;
  private lastAt = -Infinity;
  private firSeq = 0;
  /** Requests actually sent upstream. */
  sent = 0;
  /** Requests asked of us (by sinks, losses, new sinks), before coalescing. */
  asked = 0;

  constructor(
    private readonly senderSsrc: number,
    private readonly intervalMs: number,
  ) {}

  get pending(): boolean {
    return this.pendingFlag;
  }

  /** The source changed or went away: nothing is owed to the new one yet, and it may be asked at once. */
  reset(): void {
    this.pendingFlag = false;
    this.lastAt = -Infinity;
  }

  /** A keyframe arrived: whatever was pending is satisfied. */
  satisfied(): void {
    this.pendingFlag = false;
  }

  /** Ask for a keyframe; sent now when the interval allows and the publisher's SSRC is known, else left pending. */
  request(source: SourcePort | undefined, params: StreamParams | undefined, mediaSsrc: number, now: number): void {
    this.asked++;
    this.pendingFlag = true;
    this.flush(source, params, mediaSsrc, now);
  }

  /** Send a pending request if the interval has passed. */
  flush(source: SourcePort | undefined, params: StreamParams | undefined, mediaSsrc: number, now: number): void {
    if (!this.pendingFlag || !source || !params || mediaSsrc < 0 || now - this.lastAt < this.intervalMs) return;
    this.pendingFlag = false;
    this.lastAt = now;
    this.sent++;
    const fir = params.rtcpFeedback?.includes('ccm fir') ?? false;
    const pkt = fir ? buildFir(this.senderSsrc, mediaSsrc, this.firSeq++ & 0xff) : buildPli(this.senderSsrc, mediaSsrc);
    try {
      source.sendRtcp(pkt);
    } catch {
      // The transport is going away; the next source is asked again.
    }
  }
}
