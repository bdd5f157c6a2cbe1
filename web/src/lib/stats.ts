/** Rates from two getStats() samples: bitrate, fps and resolution of the video RTP stream in one direction. */
export interface VideoRate {
  bitrateBps: number;
  fps: number;
  width: number;
  height: number;
  codec: string;
  framesDecoded: number;
}

export class RateMeter {
  private last: { at: number; bytes: number; frames: number } | undefined;

  async sample(pc: RTCPeerConnection, dir: 'inbound-rtp' | 'outbound-rtp'): Promise<VideoRate | null> {
    const report = await pc.getStats();
    let out: VideoRate | null = null;
    report.forEach((s: Record<string, unknown>) => {
      if (s.type !== dir || s.kind !== 'video') return;
      const bytes = Number(dir === 'inbound-rtp' ? s.bytesReceived : s.bytesSent) || 0;
      const frames = Number(dir === 'inbound-rtp' ? s.framesDecoded : s.framesEncoded) || 0;
      const at = Number(s.timestamp) || performance.now();
      const prev = this.last;
      this.last = { at, bytes, frames };
      const dt = prev ? (at - prev.at) / 1000 : 0;
      const codec = typeof s.codecId === 'string' ? ((report.get(s.codecId) as { mimeType?: string } | undefined)?.mimeType ?? '') : '';
      out = {
        bitrateBps: prev && dt > 0 ? Math.max(0, ((bytes - prev.bytes) * 8) / dt) : 0,
        fps: Number(s.framesPerSecond) || (prev && dt > 0 ? (frames - prev.frames) / dt : 0),
        width: Number(s.frameWidth) || 0,
        height: Number(s.frameHeight) || 0,
        codec: codec.replace(/^video\//, ''),
        framesDecoded: Number(s.framesDecoded) || 0,
      };
    });
    return out;
  }
}

export const kbps = (bps: number): string => (bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mbps` : `${Math.round(bps / 1000)} kbps`);
