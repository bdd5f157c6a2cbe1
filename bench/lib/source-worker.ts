/**
 * Bench worker: the source. Publishes by WHIP (packages/rtc's WHIPClient, as the Media Server's legs and OBS do)
 * synthetic H.264 at 30 fps (a keyframe every 2 s, as IVS requires) and Opus at 50 packets/s, ~2.5 Mbps in all,
 * and stamps every packet (but a keyframe's STAP-A) with its send time just before it is sent.
 */
import { shutdownRtc, WHIPClient } from '@stagecast/rtc';
import { mulberry32, SyntheticPublisher } from '@stagecast/rtc/testing';
import { serve } from './ipc.js';
import { monoMs, writeStamp } from './stamp.js';

export interface SourceShape {
  fps: number;
  gopFrames: number;
  keyframePackets: number;
  /** P frames get min..max packets (seeded PRNG). */
  pPacketsMin: number;
  pPacketsMax: number;
  payloadBytes: number;
  audioPps: number;
}

export const DEFAULT_SHAPE: SourceShape = { fps: 30, gopFrames: 60, keyframePackets: 30, pPacketsMin: 6, pPacketsMax: 10, payloadBytes: 1150, audioPps: 50 };

const counts = { videoPackets: 0, audioPackets: 0, frames: 0, keyframes: 0, lastKeyframeSentMs: 0 };
let client: WHIPClient | undefined;
let timer: NodeJS.Timeout | undefined;
let running = false;

function startMedia(c: WHIPClient, shape: SourceShape): void {
  const v = c.sinkPort.video!;
  const a = c.sinkPort.audio!;
  const gen = new SyntheticPublisher({ videoSsrc: v.ssrc, audioSsrc: a.ssrc, videoSeq: 1000, audioSeq: 2000, videoTs: 90_000, audioTs: 48_000, payloadBytes: shape.payloadBytes });
  gen.videoPt = v.payloadType;
  gen.audioPt = a.payloadType;
  gen.fps = shape.fps;
  const rnd = mulberry32(42);
  const t0 = monoMs();
  const frameMs = 1000 / shape.fps;
  const audioMs = 1000 / shape.audioPps;
  let frame = 0;
  let audio = 0;
  running = true;
  const loop = () => {
    if (!running) return;
    const now = monoMs();
    while (t0 + frame * frameMs <= now) {
      const key = frame % shape.gopFrames === 0;
      gen.packetsPerFrame = key ? shape.keyframePackets : shape.pPacketsMin + Math.floor(rnd() * (shape.pPacketsMax - shape.pPacketsMin + 1));
      const packets = gen.videoFrame(key);
      for (let i = 0; i < packets.length; i++) {
        const p = packets[i]!;
        const sent = monoMs();
        if (!(key && i === 0)) writeStamp(p, frame, sent);
        c.sinkPort.sendRtp('video', p);
        counts.videoPackets++;
        if (key && i === packets.length - 1) counts.lastKeyframeSentMs = sent;
      }
      counts.frames++;
      if (key) counts.keyframes++;
      frame++;
    }
    while (t0 + audio * audioMs <= now) {
      const p = gen.audioPacket();
      writeStamp(p, audio, monoMs());
      c.sinkPort.sendRtp('audio', p);
      counts.audioPackets++;
      audio++;
    }
    const next = Math.min(t0 + frame * frameMs, t0 + audio * audioMs);
    timer = setTimeout(loop, Math.max(0, next - monoMs()));
  };
  loop();
}

serve(
  {
    async publish(args: { url: string; token?: string; shape?: Partial<SourceShape> }) {
      if (client) throw new Error('already publishing');
      const c = new WHIPClient({ url: args.url, ...(args.token ? { token: args.token } : {}), bindAddress: '127.0.0.1', id: 'bench-source' });
      client = c;
      const t0 = monoMs();
      await c.start();
      if (!(await c.connected(15_000))) throw new Error('source did not connect');
      startMedia(c, { ...DEFAULT_SHAPE, ...args.shape });
      return { connectMs: monoMs() - t0, location: c.location };
    },
    counts: () => ({ ...counts, at: monoMs() }),
    async unpublish() {
      running = false;
      clearTimeout(timer);
      await client?.stop();
      client = undefined;
      return true;
    },
  },
  async () => {
    running = false;
    clearTimeout(timer);
    await client?.stop().catch(() => undefined);
    await shutdownRtc();
  },
);
