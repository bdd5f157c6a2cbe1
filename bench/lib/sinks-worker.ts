/**
 * Bench worker: N receivers in one process. WHEP sinks (node-datachannel recvonly peers, offers without candidates
 * as OBS-style clients send them), and for the baseline a direct WHIP receiver (packages/rtc's WhipEndpoint on
 * node:http) that the source can publish into with no router in between. Every receiver feeds the process's
 * window aggregate (latency histogram, keyframe arrivals); the parent opens and closes measuring windows.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import nodeDataChannel from 'node-datachannel';
import { isRtcp, Peer, shutdownRtc, toNodeHttp, WhipEndpoint, withoutCandidates } from '@stagecast/rtc';
import { serve } from './ipc.js';
import { Receiver, WindowAggregate } from './receiver.js';
import { epochMs, monoMs } from './stamp.js';

interface BenchSink {
  id: number;
  receiver: Receiver;
  probe: boolean;
  peer?: Peer;
  location?: string;
  token?: string;
  close(): Promise<void>;
}

export interface JoinTarget {
  url: string;
  token?: string;
}

export interface JoinResult {
  id: number;
  ok: boolean;
  status: number;
  error?: string;
  attempts: number;
  /** POST sent → answer applied. */
  postMs?: number;
  /** Offer created → ICE+DTLS connected. */
  connectMs?: number;
  /** POST sent → first complete keyframe (probes only). */
  firstKeyframeMs?: number;
  /** How old that keyframe was when it arrived: a replay from the keyframe cache is old, a live keyframe is not. */
  firstKeyframeAgeMs?: number;
  /** Epoch ms of that keyframe's arrival (probes only; compare with the apps' log times). */
  firstKeyframeEpochMs?: number;
}

const agg = new WindowAggregate();
const sinks = new Map<number, BenchSink>();
let nextId = 1;
let cpu0 = process.cpuUsage();
let whip: { server: Server; endpoint: WhipEndpoint } | undefined;

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = monoMs() + timeoutMs;
  while (!cond()) {
    if (monoMs() > deadline) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
}

async function joinOnce(t: JoinTarget, probe: boolean): Promise<{ sink?: BenchSink; result: Omit<JoinResult, 'id' | 'attempts'> }> {
  const receiver = new Receiver(agg);
  const peer = new Peer({ name: 'bench-sink', bindAddress: '127.0.0.1' });
  const v = new nodeDataChannel.Video('0', 'RecvOnly');
  v.addH264Codec(102, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
  const a = new nodeDataChannel.Audio('1', 'RecvOnly');
  a.addOpusCodec(111);
  peer.addTrack(v).onMessage((b) => {
    if (!isRtcp(b)) receiver.onRtp('video', b);
  });
  peer.addTrack(a).onMessage((b) => {
    if (!isRtcp(b)) receiver.onRtp('audio', b);
  });
  const t0 = monoMs();
  peer.pc.setLocalDescription('offer');
  await peer.gathered(5000);
  const tPost = monoMs();
  let res: Response;
  try {
    res = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...(t.token ? { authorization: `Bearer ${t.token}` } : {}) },
      body: withoutCandidates(peer.localSdp()),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (e) {
    peer.close();
    return { result: { ok: false, status: 0, error: String(e) } };
  }
  const body = await res.text();
  if (res.status !== 201) {
    peer.close();
    return { result: { ok: false, status: res.status, error: body.slice(0, 300) } };
  }
  const location = new URL(res.headers.get('location') ?? '', t.url).toString();
  const del = async () => {
    await fetch(location, { method: 'DELETE', headers: t.token ? { authorization: `Bearer ${t.token}` } : {}, signal: AbortSignal.timeout(3000) }).catch(() => undefined);
    peer.close();
  };
  try {
    peer.pc.setRemoteDescription(body, 'answer');
  } catch (e) {
    await del();
    return { result: { ok: false, status: 201, error: `answer: ${String(e)}` } };
  }
  const postMs = monoMs() - tPost;
  if (!(await peer.connected(15_000))) {
    await del();
    return { result: { ok: false, status: 201, error: 'not connected within 15 s' } };
  }
  const connectMs = monoMs() - t0;
  const sink: BenchSink = { id: nextId++, receiver, probe, peer, location, ...(t.token ? { token: t.token } : {}), close: del };
  sinks.set(sink.id, sink);
  peer.on('closed', () => sinks.delete(sink.id));
  const result: Omit<JoinResult, 'id' | 'attempts'> = { ok: true, status: 201, postMs, connectMs };
  if (probe) {
    if (await waitUntil(() => receiver.firstKeyframeAt !== undefined, 10_000)) {
      result.firstKeyframeMs = receiver.firstKeyframeAt! - tPost;
      result.firstKeyframeEpochMs = epochMs() - (monoMs() - receiver.firstKeyframeAt!);
      if (receiver.firstKeyframeAgeMs !== undefined) result.firstKeyframeAgeMs = receiver.firstKeyframeAgeMs;
    }
  }
  return { sink, result };
}

async function join(t: JoinTarget, probe: boolean): Promise<JoinResult> {
  let last: Omit<JoinResult, 'id' | 'attempts'> = { ok: false, status: 0 };
  for (let attempt = 1; attempt <= 3; attempt++) {
    const { sink, result } = await joinOnce(t, probe);
    if (sink) return { id: sink.id, attempts: attempt, ...result };
    last = result;
    if (result.status >= 400 && result.status < 500) break; // refused: retrying the same token will not help
  }
  return { id: 0, attempts: 3, ...last };
}

serve(
  {
    /** Joins every target, `concurrency` at a time. */
    async join(args: { targets: JoinTarget[]; concurrency?: number; probe?: boolean }): Promise<JoinResult[]> {
      const out: JoinResult[] = new Array(args.targets.length);
      let i = 0;
      const lanes = Array.from({ length: Math.min(args.concurrency ?? 8, args.targets.length) }, async () => {
        while (i < args.targets.length) {
          const k = i++;
          out[k] = await join(args.targets[k]!, args.probe ?? false);
        }
      });
      await Promise.all(lanes);
      return out;
    },
    async leave(args: { ids: number[] }) {
      await Promise.all(args.ids.map((id) => sinks.get(id)?.close()));
      for (const id of args.ids) sinks.delete(id);
      return true;
    },
    /** A direct WHIP receiver (baseline: source → receiver, no router). Returns its endpoint URL. */
    async whipListen() {
      const server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const endpoint = new WhipEndpoint({
        basePath: '/whip',
        endpointUrl: () => `${base}/whip`,
        maxSessions: 2,
        bindAddress: '127.0.0.1',
        onSession: (s) => {
          const receiver = new Receiver(agg);
          const sink: BenchSink = { id: nextId++, receiver, probe: false, close: async () => s.close() };
          sinks.set(sink.id, sink);
          s.onRtp((kind, p) => receiver.onRtp(kind, p));
          s.on('closed', () => sinks.delete(sink.id));
        },
      });
      server.on('request', toNodeHttp(endpoint));
      whip = { server, endpoint };
      return `${base}/whip`;
    },
    /** Non-probe sinks that have received at least `minPackets` RTP packets, of all of them. */
    live(args: { minPackets: number }) {
      let live = 0;
      let total = 0;
      for (const s of sinks.values()) {
        if (s.probe) continue;
        total++;
        if (s.receiver.packets >= args.minPackets) live++;
      }
      return { live, total };
    },
    windowStart() {
      agg.reset();
      for (const s of sinks.values()) {
        s.receiver.resetWindow();
        s.receiver.measuring = !s.probe;
      }
      cpu0 = process.cpuUsage();
      return { sinks: [...sinks.values()].filter((s) => !s.probe).length, at: monoMs() };
    },
    windowEnd() {
      const cpu = process.cpuUsage(cpu0);
      let packets = 0;
      let lost = 0;
      let worstLost = 0;
      let minPackets = Infinity;
      let n = 0;
      for (const s of sinks.values()) {
        if (s.probe) continue;
        n++;
        const r = s.receiver;
        const got = r.video.received + r.audio.received;
        const l = r.video.lost + r.audio.lost;
        packets += got;
        lost += l;
        worstLost = Math.max(worstLost, l);
        minPackets = Math.min(minPackets, got);
      }
      return {
        sinks: n,
        packets,
        lost,
        worstLost,
        minPackets: n ? minPackets : 0,
        latency: agg.latency.sparse(),
        latencyCount: agg.latency.count,
        latencyMaxMs: agg.latency.maxMs,
        keyframes: [...agg.keyframes.entries()],
        cpuMs: (cpu.user + cpu.system) / 1000,
        at: monoMs(),
      };
    },
  },
  async () => {
    await Promise.allSettled([...sinks.values()].map((s) => s.close()));
    await whip?.endpoint.close();
    whip?.server.closeAllConnections();
    whip?.server.close();
    await shutdownRtc();
  },
);
