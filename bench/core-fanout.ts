/**
 * Micro-benchmark of the fan-out core alone (no network, no SRTP): synthetic H.264 + Opus RTP pushed
 * through a Router with N in-memory sinks. Reports CPU ns per packet per sink (process.cpuUsage).
 * usage: node --import tsx bench/core-fanout.ts [--seconds=2] [--sinks=1,10,50,100,200]
 */
import { Router } from '../packages/rtc/src/core/index.js';
import { FakeSinkPort, FakeSourcePort, H264, OPUS, SyntheticPublisher } from '@stagecast/rtc/testing';

const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const seconds = Number(arg('seconds', '2'));
const sinkCounts = arg('sinks', '1,10,50,100,200').split(',').map(Number);
const AUDIO_LEVEL = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
const MID = 'urn:ietf:params:rtp-hdrext:sdes:mid';

interface Row {
  sinks: number;
  packets: number;
  nsPerPacket: number;
  nsPerPacketPerSink: number;
  packetsPerSecond: number;
  heapMB: number;
}

function runOnce(n: number): Row {
  let now = 1_700_000_000_000;
  const router = new Router({ now: () => now });
  const src = new FakeSourcePort();
  router.setSource(src, { audio: { ...OPUS, extensions: { [AUDIO_LEVEL]: 1, [MID]: 4 } }, video: { ...H264, extensions: { [MID]: 4 } } });
  const ports: FakeSinkPort[] = [];
  for (let i = 0; i < n; i++) {
    // Half the sinks negotiate the same ids as the source (no copy), half other ids (one rewrite per class).
    const ext = i % 2 === 0 ? { [MID]: 4, [AUDIO_LEVEL]: 1 } : { [MID]: 9, [AUDIO_LEVEL]: 10 };
    const p = new FakeSinkPort(`s${i}`, { audio: { ...OPUS, ssrc: 1000 + i, extensions: ext }, video: { ...H264, ssrc: 5000 + i, payloadType: 102, extensions: ext } }, false);
    ports.push(p);
  }
  const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 1, audioSeq: 1, videoTs: 1, audioTs: 1, packetsPerFrame: 8, payloadBytes: 1100 });
  pub.extensions = [{ id: 4, data: Uint8Array.of(0x30) }];
  // Pre-build 10 s of media so the measured loop is the router only.
  const video: Uint8Array[][] = [];
  const audio: Uint8Array[] = [];
  for (let f = 0; f < 300; f++) {
    video.push(pub.videoFrame(f % 60 === 0));
    audio.push(pub.audioPacket(), pub.audioPacket());
    // (600 audio packets: one is sent per video frame, so a pass over them spans two passes of video)
  }
  const videoPerLoop = video.reduce((n, fr) => n + fr.length, 0);
  for (const p of ports) router.addSink(p);
  // Warm-up (JIT, pools).
  for (let f = 0; f < 300; f++) for (const p of video[f]!) router.pushRtp('video', p);
  let packets = 0;
  const deadline = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  let f = 0;
  while (performance.now() < deadline) {
    for (let k = 0; k < 30; k++, f++) {
      // Real publishers send fresh sequence numbers: re-stamp the pre-built frames (cheap, outside the router).
      const frame = video[f % 300]!;
      for (const p of frame) {
        const seq = (p[2]! << 8) | p[3]!;
        const nseq = (seq + videoPerLoop) & 0xffff;
        p[2] = nseq >> 8;
        p[3] = nseq & 0xff;
        router.pushRtp('video', p);
        packets++;
      }
      const a = audio[f % 600]!;
      const aseq = (((a[2]! << 8) | a[3]!) + 600) & 0xffff;
      a[2] = aseq >> 8;
      a[3] = aseq & 0xff;
      router.pushRtp('audio', a);
      packets++;
      now += 33;
    }
    router.tick();
  }
  const cpu = process.cpuUsage(cpu0);
  const ns = (cpu.user + cpu.system) * 1000;
  const delivered = ports.reduce((s, p) => s + p.count, 0);
  if (delivered < packets * n * 0.99) throw new Error(`only ${delivered} of ${packets * n} packets delivered`);
  const row: Row = {
    sinks: n,
    packets,
    nsPerPacket: Math.round(ns / packets),
    nsPerPacketPerSink: Math.round(ns / packets / n),
    packetsPerSecond: Math.round(packets / seconds),
    heapMB: Math.round(process.memoryUsage().heapUsed / 1e5) / 10,
  };
  router.close();
  return row;
}

const rows = sinkCounts.map(runOnce);
console.log('sinks | packets  | ns/packet | ns/packet/sink | source pkt/s | heap MB');
for (const r of rows) {
  console.log(
    `${String(r.sinks).padStart(5)} | ${String(r.packets).padStart(8)} | ${String(r.nsPerPacket).padStart(9)} | ${String(r.nsPerPacketPerSink).padStart(14)} | ${String(r.packetsPerSecond).padStart(12)} | ${r.heapMB}`,
  );
}
console.log(JSON.stringify({ bench: 'core-fanout', node: process.version, seconds, rows }));
