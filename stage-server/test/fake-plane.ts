/**
 * An in-memory MediaPlane: endpoints that answer POST with 201 + a Location and hand the room scriptable sessions,
 * and a router that records what the room does with it. It tests the room's policy, not WebRTC.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { MediaKind, SinkPort, SinkStats, SourcePort, SourceStats } from '@stagecast/rtc';
import type { MediaHttpRequest, MediaHttpResponse } from '../src/services/http.js';
import type {
  EndpointOptions,
  IngestSession,
  MediaEndpoint,
  MediaPlane,
  MediaRouter,
  PlaybackSession,
  RouterSink,
} from '../src/services/media-plane.js';

const AUDIO_IN = { kind: 'audio' as const, ssrc: 0, payloadType: 111, clockRate: 48000, extensions: {} };
const VIDEO_IN = { kind: 'video' as const, ssrc: 0, payloadType: 102, clockRate: 90000, extensions: {} };

export class FakeSession extends EventEmitter {
  readonly id = randomBytes(16).toString('base64url');
  closedWith: string | undefined;
  readonly params = { audio: AUDIO_IN, video: VIDEO_IN };
  /** RTCP the router sent toward this publisher. */
  readonly rtcpToPublisher: Uint8Array[] = [];
  readonly sourcePort: SourcePort = { sendRtcp: (p) => void this.rtcpToPublisher.push(p.slice()) };
  /** RTP the router wrote into this viewer: [kind, copy]. */
  readonly received: Array<[MediaKind, Uint8Array]> = [];
  readonly sinkPort: SinkPort = {
    id: this.id,
    audio: { kind: 'audio', ssrc: 0x0a0a0a0a, payloadType: 109, clockRate: 48000, extensions: {} },
    video: { kind: 'video', ssrc: 0x0b0b0b0b, payloadType: 96, clockRate: 90000, extensions: {} },
    sendRtp: (kind, p) => void this.received.push([kind, p.slice()]),
    sendRtcp: () => undefined,
  };
  private rtp?: (kind: MediaKind, p: Uint8Array) => void;
  private rtcp?: (p: Uint8Array) => void;
  constructor(readonly role: 'whip' | 'whep') {
    super();
  }
  onRtp(fn: (kind: MediaKind, p: Uint8Array) => void) {
    this.rtp = fn;
  }
  onRtcp(fn: (p: Uint8Array) => void) {
    this.rtcp = fn;
  }
  /** A fake session can be written to at once. */
  onWritable(fn: () => void) {
    fn();
  }
  bytesReceived() {
    return 0;
  }
  /** Test controls. */
  connect() {
    this.emit('connected');
  }
  sendRtp(kind: MediaKind, p: Uint8Array) {
    this.rtp?.(kind, p);
  }
  sendRtcp(p: Uint8Array) {
    this.rtcp?.(p);
  }
  close(reason = 'closed') {
    if (this.closedWith !== undefined) return;
    this.closedWith = reason;
    this.emit('closed', reason);
  }
}

class FakeEndpoint implements MediaEndpoint {
  readonly sessions = new Map<string, FakeSession>();
  constructor(
    private readonly role: 'whip' | 'whep',
    private readonly o: EndpointOptions<FakeSession>,
    private readonly all: FakeSession[],
    private readonly gate: () => Promise<void> | undefined,
  ) {}
  async handle(req: MediaHttpRequest): Promise<MediaHttpResponse> {
    const path = req.url.split('?')[0]!;
    if (req.method === 'POST' && path === this.o.basePath) {
      if (this.sessions.size >= this.o.maxSessions) return { status: 503, headers: { 'retry-after': '1' } };
      const s = new FakeSession(this.role);
      this.sessions.set(s.id, s);
      this.all.push(s);
      s.on('closed', () => this.sessions.delete(s.id));
      this.o.onSession(s, '');
      await new Promise((r) => setImmediate(r)); // an answer takes a moment: let concurrent requests interleave
      await this.gate();
      return {
        status: 201,
        headers: { location: `${this.o.endpointUrl()}/${s.id}`, etag: '"1"', 'content-type': 'application/sdp' },
        body: 'v=0\r\n',
      };
    }
    if (req.method === 'DELETE' && path.startsWith(this.o.basePath + '/')) {
      const s = this.sessions.get(path.slice(this.o.basePath.length + 1));
      if (!s) return { status: 404, headers: {} };
      s.close('DELETE');
      return { status: 200, headers: {} };
    }
    return { status: 405, headers: {} };
  }
  close() {
    for (const s of [...this.sessions.values()]) s.close('endpoint closed');
  }
}

const zeroSink = (id: string): SinkStats => ({
  id,
  packetsSent: 10,
  bytesSent: 1000,
  keyframesSent: 1,
  nacksReceived: 0,
  retransmitted: 0,
  plisReceived: 0,
  fractionLost: 0,
  cumulativeLost: 0,
  jitter: 0,
  started: true,
});

export class FakeRouter extends EventEmitter implements MediaRouter {
  source: SourcePort | undefined;
  sourceChanges = 0;
  readonly rtp: Array<[MediaKind, number]> = [];
  readonly sinks = new Map<string, { rtcp: number; closed: boolean }>();
  closed = false;
  setSource(port: SourcePort) {
    this.source = port;
    this.sourceChanges++;
  }
  clearSource() {
    this.source = undefined;
  }
  pushRtp(kind: MediaKind, p: Uint8Array) {
    this.rtp.push([kind, p.length]);
  }
  /** A keyframe, as the real router reports one. */
  keyframe() {
    this.emit('keyframe', { at: Date.now() });
  }
  pushRtcp() {}
  addSink(port: SinkPort): RouterSink {
    const rec = { rtcp: 0, closed: false };
    this.sinks.set(port.id, rec);
    return { handleRtcp: () => void rec.rtcp++, stats: () => zeroSink(port.id), close: () => void (rec.closed = true) };
  }
  sourceStats(): SourceStats {
    return {
      online: this.source !== undefined,
      packetsReceived: this.rtp.length,
      bytesReceived: this.rtp.reduce((n, [, l]) => n + l, 0),
      keyframesReceived: 0,
      bitrateBps: 0,
      lost: 0,
      plisSent: 0,
      nacksSent: 0,
      recovered: 0,
      lostForGood: 0,
      rtxReceived: 0,
    };
  }
  close() {
    this.closed = true;
  }
}

export class FakePlane implements MediaPlane {
  readonly routers = new Map<string, FakeRouter>();
  readonly sessions: FakeSession[] = [];
  /** While set, every POST's answer waits for it (tests of concurrent POSTs). */
  answerGate: Promise<void> | undefined;
  /** With a factory (e.g. packages/rtc's real Router), routers are not recorded. */
  constructor(private readonly routerFactory?: () => MediaRouter) {}
  createRouter(label: string): MediaRouter {
    if (this.routerFactory) return this.routerFactory();
    const r = new FakeRouter();
    this.routers.set(label, r);
    return r;
  }
  createWhipEndpoint(o: EndpointOptions<IngestSession>) {
    return new FakeEndpoint('whip', o as unknown as EndpointOptions<FakeSession>, this.sessions, () => this.answerGate);
  }
  createWhepEndpoint(o: EndpointOptions<PlaybackSession>) {
    return new FakeEndpoint('whep', o as unknown as EndpointOptions<FakeSession>, this.sessions, () => this.answerGate);
  }
  of(role: 'whip' | 'whep') {
    return this.sessions.filter((s) => s.role === role);
  }
}
