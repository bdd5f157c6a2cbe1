/**
 * WHIPClient (RFC 9725 client): publishes one H.264 + Opus stream into a WHIP endpoint (a stage: IVS, the local
 * stage server, any WHIP server). The offer always carries an H.264 video m-line (IVS refuses one without), is
 * sent with every candidate (no trickle), and redirects are followed by hand so the Bearer token survives a move
 * to another host (fetch drops Authorization across origins; IVS answers 307).
 */
import { EventEmitter } from 'node:events';
import nodeDataChannel from 'node-datachannel';
import type { SinkPort } from '../core/types.js';
import type { IceServerConfig } from './http.js';
import { Peer, type PeerState } from './peer.js';
import { newSsrc } from './offer.js';
import { parseSdp, SdpError } from './sdp.js';
import { receiveFrom, TrackHandle, TrackSinkPort, type ReceiveHandlers } from './track-io.js';

export const H264_PT = 102;
export const OPUS_PT = 111;
const H264_FMTP = 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1';
const MAX_REDIRECTS = 5;

/** An offer without a=candidate / a=end-of-candidates lines. */
export function withoutCandidates(sdp: string): string {
  return sdp.replace(/a=(candidate:[^\r\n]*|end-of-candidates)\r?\n/g, '');
}

/**
 * Where a WHIP URL points, fit for a log line or a stats page: its origin only. A WHIP URL's path or query may be
 * the credential itself (Cloudflare's stream key, a MediaMTX ?token=, a WHIP_TARGETS entry).
 */
export function whipUrlForLog(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' && !u.search ? u.origin : `${u.origin}/…`;
  } catch {
    return '(invalid URL)';
  }
}

export class WhipHttpError extends Error {
  override readonly name = 'WhipHttpError';
  constructor(
    readonly status: number,
    readonly body: string,
    /** The URL that answered, whole: never put it in a log (see whipUrlForLog). */
    readonly url: string,
    /** Seconds, from Retry-After on 503/429. */
    readonly retryAfter?: number,
  ) {
    super(`WHIP ${status} from ${whipUrlForLog(url)}${body ? `: ${body.slice(0, 200)}` : ''}`);
  }
}

export interface WHIPClientOptions {
  url: string;
  token?: string;
  /** Id of the SinkPort (e.g. the leg id). */
  id?: string;
  bindAddress?: string;
  iceServers?: readonly IceServerConfig[];
  /** Per HTTP request. */
  timeoutMs?: number;
  gatherTimeoutMs?: number;
  audio?: boolean;
}

export interface SdpExchange {
  answer: string;
  /** The URL that answered 201, after redirects. */
  url: string;
  /** The session URL, absolute. */
  location: string;
  etag: string | undefined;
}

/**
 * POSTs an SDP offer (WHIP, WHEP) and returns the 201's answer and Location. Redirects (307/308) are followed by
 * hand so the Authorization header survives a move to another host; anything else but 201 is a WhipHttpError.
 */
export async function postSdpOffer(url: string, offer: string, headers: Record<string, string>, timeoutMs: number): Promise<SdpExchange> {
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/sdp' },
      body: offer,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.text();
    if (res.status === 307 || res.status === 308) {
      const next = res.headers.get('location');
      if (!next) throw new WhipHttpError(res.status, 'redirect without Location', url);
      url = new URL(next, url).toString();
      continue;
    }
    if (res.status !== 201) {
      const ra = res.headers.get('retry-after');
      const retryAfter = ra !== null && /^\d+$/.test(ra) ? Number(ra) : undefined;
      // 301/302/303 are refused too: RFC 9725 §4.5 forbids them, and they may turn a POST into a GET.
      throw new WhipHttpError(res.status, body, url, retryAfter);
    }
    const loc = res.headers.get('location');
    if (!loc) throw new WhipHttpError(201, 'no Location in the 201', url);
    return { answer: body, url, location: new URL(loc, url).toString(), etag: res.headers.get('etag') ?? undefined };
  }
  throw new WhipHttpError(310, `more than ${MAX_REDIRECTS} redirects`, url);
}

export type WHIPClientState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

interface WHIPClientEvents {
  state: [WHIPClientState];
  /** RTCP from the receiving side (PLI, NACK, RR), for the router's Sink. */
  rtcp: [Uint8Array];
}

export class WHIPClient extends EventEmitter<WHIPClientEvents> {
  readonly sinkPort: SinkPort;
  /** Session URL (absolute), once the 201 arrived. */
  location: string | undefined;
  etag: string | undefined;
  /** The URL that answered 201, after redirects. */
  finalUrl: string | undefined;
  private readonly peer: Peer;
  private readonly handlers: ReceiveHandlers = { rtp: undefined, rtcp: undefined };
  private stateValue: WHIPClientState = 'new';
  private stopped = false;

  constructor(private readonly o: WHIPClientOptions) {
    super();
    this.peer = new Peer({ name: 'whip-client', ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}), ...(o.iceServers ? { iceServers: o.iceServers } : {}) });
    const msid = 'stagecast';
    const cname = `stagecast-${Math.random().toString(36).slice(2, 10)}`;
    const videoSsrc = newSsrc();
    const v = new nodeDataChannel.Video('0', 'SendOnly');
    v.addH264Codec(H264_PT, H264_FMTP);
    v.addSSRC(videoSsrc, cname, msid, 'video');
    // 'connected' means media can flow: the peer is connected AND its tracks are open. The tracks open a few ms
    // after the peer's 'connected'; a packet sent in between is dropped (a replayed keyframe cache above all).
    let peerConnected = false;
    const ready = (): void => {
      if (peerConnected && video.open && (!audio || audio.open)) this.setState('connected');
    };
    const video: TrackHandle = new TrackHandle('video', this.peer.addTrack(v), () => ready());
    let audio: TrackHandle | undefined;
    let audioSsrc = 0;
    if (o.audio !== false) {
      audioSsrc = newSsrc();
      const a = new nodeDataChannel.Audio('1', 'SendOnly');
      a.addOpusCodec(OPUS_PT);
      a.addSSRC(audioSsrc, cname, msid, 'audio');
      audio = new TrackHandle('audio', this.peer.addTrack(a), () => ready());
    }
    this.sinkPort = new TrackSinkPort(
      o.id ?? 'whip-client',
      { video, ...(audio ? { audio } : {}) },
      audio ? { kind: 'audio', ssrc: audioSsrc, payloadType: OPUS_PT, clockRate: 48000, extensions: {} } : undefined,
      { kind: 'video', ssrc: videoSsrc, payloadType: H264_PT, clockRate: 90000, extensions: {}, rtcpFeedback: ['nack', 'nack pli'] },
    );
    this.handlers.rtcp = (p) => this.emit('rtcp', p);
    receiveFrom(video, this.handlers);
    if (audio) receiveFrom(audio, this.handlers);
    this.peer.on('state', (s: PeerState) => {
      if (s === 'connected') {
        peerConnected = true;
        ready();
      } else if (s === 'failed') this.setState('failed');
    });
    this.peer.on('closed', () => this.setState(this.stopped ? 'closed' : 'failed'));
  }

  get state(): WHIPClientState {
    return this.stateValue;
  }

  private setState(s: WHIPClientState): void {
    if (this.stateValue === s || this.stateValue === 'closed') return;
    this.stateValue = s;
    this.emit('state', s);
  }

  /** Offers, POSTs (following redirects), applies the answer. Resolves once signalling is done; see connected(). */
  async start(): Promise<void> {
    this.setState('connecting');
    try {
      this.peer.pc.setLocalDescription('offer');
      await this.peer.gathered(this.o.gatherTimeoutMs ?? 5000);
      // Sent without candidates, as OBS does (and IVS accepts): the server then cannot start ICE and DTLS
      // before we hold its answer. With candidates in the offer, a libdatachannel server on a fast path
      // connects and sends its DTLS ClientHello while we are still applying the answer, and libdatachannel
      // closes our transport ("remote candidate without ICE transport"), about one start in 50 on loopback.
      // Our own checks reach the server, which accepts us as peer-reflexive.
      const offer = withoutCandidates(this.peer.localSdp());
      const { answer, url, location, etag } = await this.post(offer);
      this.finalUrl = url;
      this.location = location;
      this.etag = etag;
      if (this.stopped) {
        await this.sendDelete();
        return;
      }
      try {
        parseSdp(answer);
      } catch (err) {
        throw new WhipHttpError(201, err instanceof SdpError ? `bad SDP answer: ${err.message}` : 'bad SDP answer', url);
      }
      this.peer.pc.setRemoteDescription(answer, 'answer');
    } catch (err) {
      this.setState('failed');
      this.peer.close();
      throw err;
    }
  }

  /** Resolves true once media can flow (state 'connected'); false when it fails, closes or times out. */
  connected(timeoutMs = 10_000): Promise<boolean> {
    if (this.stateValue === 'connected') return Promise.resolve(true);
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onState = (s: WHIPClientState): void => {
        if (s === 'connected') done(true);
        else if (s === 'failed' || s === 'closed') done(false);
      };
      const done = (v: boolean): void => {
        clearTimeout(t);
        this.off('state', onState);
        resolve(v);
      };
      const t = setTimeout(() => done(false), timeoutMs);
      this.on('state', onState);
    });
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...extra, ...(this.o.token ? { authorization: `Bearer ${this.o.token}` } : {}) };
  }

  private post(offer: string): Promise<SdpExchange> {
    return postSdpOffer(this.o.url, offer, this.headers(), this.o.timeoutMs ?? 10_000);
  }

  private async sendDelete(): Promise<void> {
    if (!this.location) return;
    const loc = this.location;
    this.location = undefined;
    try {
      await fetch(loc, { method: 'DELETE', headers: this.headers(), signal: AbortSignal.timeout(Math.min(this.o.timeoutMs ?? 10_000, 3000)) });
    } catch {
      /* the session ends anyway when the PeerConnection closes (consent freshness) */
    }
  }

  /** Ends the session: DELETE (with the Bearer), then close every Track. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.sendDelete();
    this.peer.close();
    this.setState('closed');
    this.removeAllListeners();
  }

  /** node-datachannel's rtt() is SCTP's: undefined for this media-only peer (use RTCP RR through the router). */
  rttMs(): number | undefined {
    return this.peer.rttMs();
  }
  /** RTP bytes sent through the SinkPort (node-datachannel's own counter covers only SCTP). */
  bytesSent(): number {
    return (this.sinkPort as TrackSinkPort).bytesSent + this.peer.bytesSent();
  }
}
