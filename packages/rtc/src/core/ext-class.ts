/**
 * Sinks that negotiated the same header-extension ids share an extension class: the source packet
 * is rewritten for the class once (ids remapped, the rest stripped) and then every sink in it only
 * gets its fixed header fields written. When the mapping is the identity, no copy is made at all.
 */
import type { SinkMunger } from './munger.js';

/** Extensions whose values describe one transport hop and must not be forwarded (we do not rewrite them). */
export const HOP_BY_HOP_EXTENSIONS = [
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
];

export class ExtClass {
  readonly key: string;
  readonly sinkExtensions: Record<string, number>;
  /** source id → sink id (0 = strip). */
  readonly map = new Uint8Array(256);
  identity = true;
  buf: Uint8Array = new Uint8Array(1500);
  readonly sinks: SinkMunger[] = [];

  constructor(key: string, sinkExtensions: Record<string, number>) {
    this.key = key;
    this.sinkExtensions = sinkExtensions;
  }

  /** Recompute the id map against the source's negotiated extensions. */
  bind(sourceExtensions: Record<string, number> | undefined, strip: readonly string[]): void {
    this.map.fill(0);
    this.identity = true;
    if (!sourceExtensions) return;
    for (const uri of Object.keys(sourceExtensions)) {
      const src = sourceExtensions[uri]!;
      if (!(src >= 1 && src <= 255)) continue;
      const dst = strip.includes(uri) ? 0 : (this.sinkExtensions[uri] ?? 0);
      this.map[src] = dst >= 1 && dst <= 255 ? dst : 0;
      if (this.map[src] !== src) this.identity = false;
    }
  }

  static keyOf(ext: Record<string, number> | undefined): string {
    if (!ext) return '';
    return Object.keys(ext)
      .sort()
      .map((k) => `${k}=${ext[k]}`)
      .join(' ');
  }
}
