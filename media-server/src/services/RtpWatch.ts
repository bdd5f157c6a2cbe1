/**
 * An IngestSession seen through a watch on its RTP: when it last delivered a packet (a silent session can be taken
 * over, see IngestService), and an optional hook on its first packet. A broadcaster who reconnects (OBS: a new POST
 * with the same token) gets a new session while the old one may still deliver: the router keeps the old one as its
 * source until the new one's first packet arrives, then switches (make-before-break), so the legs never sit on a
 * session that has not sent anything yet. Packets go downstream once onRtp() has been called (the first one right
 * after onFirst()).
 */
import type { MediaKind } from '@stagecast/rtc';
import type { IngestSession } from '../media/ports.js';

export class RtpWatch implements IngestSession {
  readonly id: string;
  readonly params: IngestSession['params'];
  readonly sourcePort: IngestSession['sourcePort'];
  private seen = false;
  /** When the last RTP packet arrived (the watch's clock), or NaN before the first. */
  lastRtpAt = NaN;
  private downstream: ((kind: MediaKind, packet: Uint8Array) => void) | undefined;

  constructor(
    readonly inner: IngestSession,
    /** Called once, on the first RTP packet, before that packet is forwarded (the place to hand this session on). */
    onFirst: (() => void) | undefined,
    now: () => number,
  ) {
    this.id = inner.id;
    this.params = inner.params;
    this.sourcePort = inner.sourcePort;
    inner.onRtp((kind, packet) => {
      this.lastRtpAt = now();
      if (!this.seen) {
        this.seen = true;
        onFirst?.();
      }
      this.downstream?.(kind, packet);
    });
  }

  /** Whether the session has delivered an RTP packet yet. */
  get delivering(): boolean {
    return this.seen;
  }

  onRtp(fn: (kind: MediaKind, packet: Uint8Array) => void): void {
    this.downstream = fn;
  }

  onRtcp(fn: (packet: Uint8Array) => void): void {
    this.inner.onRtcp(fn);
  }

  on(event: 'closed', listener: (reason: string) => void): this {
    this.inner.on(event, listener);
    return this;
  }

  close(reason?: string): void {
    this.inner.close(reason);
  }
}
