/**
 * WHEPClient (draft-ietf-wish-whep client): plays one H.264 + Opus stream from a WHEP endpoint — another Media
 * Server's relay endpoint above all — as a router SOURCE: its RTP goes to onRtp, the origin's RTCP (SR) to onRtcp,
 * and `sourcePort` carries our RTCP (NACK, PLI, RR) back. The offer is recvonly, H.264 with RTX and NACK/PLI plus
 * Opus, sent without candidates (as WHIPClient, for the same reason); the answer's parameters (SSRC, payload types,
 * feedback) become `params`. stop() DELETEs the session with the same Bearer and closes the peer.
 */
import { EventEmitter } from 'node:events';
import nodeDataChannel from 'node-datachannel';
import type { MediaKind, SourcePort, StreamParams } from '../core/types.js';
import { Peer, type PeerState } from './peer.js';
import { parseSdp, pickH264, pickOpus, primarySsrc, SdpError, streamParams } from './sdp.js';
import { receiveFrom, TrackHandle, type ReceiveHandlers } from './track-io.js';
import { H264_PT, OPUS_PT, postSdpOffer, withoutCandidates, WhipHttpError } from './whip-client.js';

const H264_FMTP = 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1';
export const H264_RTX_PT = 103;
/** Feedback a router source needs for loss recovery and keyframe requests, when an answer lists none. */
const DEFAULT_VIDEO_FEEDBACK = ['nack', 'nack pli'];
/** How long the peer may stay 'disconnected' (consent lost: the server vanished) before the client gives up. */
const DISCONNECTED_GRACE_MS = 5000;

export interface WHEPClientOptions {
  url: string;
  token?: string;
  /** Id of the session, for logs and stats. */
  id?: string;
  bindAddress?: string;
  /** Per HTTP request. */
  timeoutMs?: number;
  gatherTimeoutMs?: number;
  /**
   * Rewrites the answer before it is applied (after it was checked): a test puts an impairment relay's address in
   * place of the server's candidate. Production code leaves it unset.
   */
  answerTransform?: (answer: string) => string;
}

export type WHEPClientState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

interface WHEPClientEvents {
  state: [WHEPClientState];
  /** Closed for good (stop(), or the transport failed): the reason. */
  closed: [string];
}

/**
 * The stream parameters a WHEP answer announces, as a router source's: one H.264 video and/or one Opus audio
 * section, each with its sending SSRC. Throws SdpError for an answer that does not parse or carries neither.
 */
export function answerSourceParams(answer: string): { audio?: StreamParams; video?: StreamParams } {
  const sd = parseSdp(answer);
  const out: { audio?: StreamParams; video?: StreamParams } = {};
  for (const m of sd.media) {
    if (m.kind !== 'video' && m.kind !== 'audio') continue;
    if (out[m.kind]) throw new SdpError(`more than one ${m.kind} section`);
    const codec = m.kind === 'video' ? pickH264(m) : pickOpus(m);
    if (!codec) continue;
    const p = streamParams(m, codec, primarySsrc(m));
    if (m.kind === 'video' && (p.rtcpFeedback ?? []).length === 0) p.rtcpFeedback = DEFAULT_VIDEO_FEEDBACK.slice();
    out[m.kind] = p;
  }
  if (!out.audio && !out.video) throw new SdpError('the answer has no H.264 or Opus section');
  return out;
}

export class WHEPClient extends EventEmitter<WHEPClientEvents> {
  readonly id: string;
  params: { audio?: StreamParams; video?: StreamParams } = {};
  readonly sourcePort: SourcePort;
  /** Session URL (absolute), once the 201 arrived. */
  location: string | undefined;
  private readonly peer: Peer;
  private readonly handlers: ReceiveHandlers = { rtp: undefined, rtcp: undefined };
  private readonly video: TrackHandle;
  private readonly audio: TrackHandle;
  private stateValue: WHEPClientState = 'new';
  private stopped = false;
  private closeReason: string | undefined;
  private disconnectTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: WHEPClientOptions) {
    super();
    this.id = o.id ?? 'whep-client';
    this.peer = new Peer({ name: 'whep-client', ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}) });
    const v = new nodeDataChannel.Video('0', 'RecvOnly');
    v.addH264Codec(H264_PT, H264_FMTP);
    v.addRTXCodec(H264_RTX_PT, H264_PT, 90000);
    const a = new nodeDataChannel.Audio('1', 'RecvOnly');
    a.addOpusCodec(OPUS_PT);
    let peerConnected = false;
    const ready = (): void => {
      if (peerConnected && this.video.open && this.audio.open) this.setState('connected');
    };
    this.video = new TrackHandle('video', this.peer.addTrack(v), ready);
    this.audio = new TrackHandle('audio', this.peer.addTrack(a), ready);
    receiveFrom(this.video, this.handlers);
    receiveFrom(this.audio, this.handlers);
    this.sourcePort = {
      sendRtcp: (packet: Uint8Array) => {
        (this.video.open ? this.video : this.audio).send(packet);
      },
    };
    this.peer.on('state', (s: PeerState) => {
      if (s === 'connected') {
        clearTimeout(this.disconnectTimer);
        this.disconnectTimer = undefined;
        peerConnected = true;
        ready();
      } else if (s === 'failed') this.finish('ice failed');
      else if (s === 'disconnected') {
        // A server that vanished (killed, unplugged) is noticed in seconds rather than at ICE's own failure.
        this.disconnectTimer ??= setTimeout(() => {
          this.finish('consent lost');
          this.peer.close();
        }, DISCONNECTED_GRACE_MS);
        this.disconnectTimer.unref?.();
      }
    });
    this.peer.on('closed', () => this.finish(this.stopped ? 'stopped' : 'peer closed'));
  }

  get state(): WHEPClientState {
    return this.stateValue;
  }
  get packetsReceived(): number {
    return this.handlers.rtpPackets ?? 0;
  }
  get bytesReceived(): number {
    return this.handlers.rtpBytes ?? 0;
  }

  /** Every RTP packet of the stream. The buffer is only valid during the call. */
  onRtp(fn: (kind: MediaKind, packet: Uint8Array) => void): void {
    this.handlers.rtp = fn;
  }
  /** Every RTCP packet from the sender (SR, SDES). */
  onRtcp(fn: (packet: Uint8Array) => void): void {
    this.handlers.rtcp = fn;
  }

  private setState(s: WHEPClientState): void {
    if (this.stateValue === s || this.stateValue === 'closed') return;
    this.stateValue = s;
    this.emit('state', s);
  }

  private finish(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    clearTimeout(this.disconnectTimer);
    this.setState(this.stopped ? 'closed' : 'failed');
    this.handlers.rtp = undefined;
    this.handlers.rtcp = undefined;
    this.emit('closed', reason);
  }

  /** Offers, POSTs, applies the answer. Resolves once signalling is done; 'state' says when media flows. */
  async start(): Promise<void> {
    this.setState('connecting');
    try {
      this.peer.pc.setLocalDescription('offer');
      await this.peer.gathered(this.o.gatherTimeoutMs ?? 5000);
      const headers: Record<string, string> = this.o.token ? { authorization: `Bearer ${this.o.token}` } : {};
      const ex = await postSdpOffer(this.o.url, withoutCandidates(this.peer.localSdp()), headers, this.o.timeoutMs ?? 10_000);
      this.location = ex.location;
      if (this.stopped) {
        await this.sendDelete();
        return;
      }
      try {
        this.params = answerSourceParams(ex.answer);
      } catch (err) {
        throw new WhipHttpError(201, err instanceof SdpError ? `bad SDP answer: ${err.message}` : 'bad SDP answer', ex.url);
      }
      this.peer.pc.setRemoteDescription(this.o.answerTransform ? this.o.answerTransform(ex.answer) : ex.answer, 'answer');
    } catch (err) {
      await this.sendDelete();
      this.finish(err instanceof Error ? err.message : String(err));
      this.peer.close();
      throw err;
    }
  }

  private async sendDelete(): Promise<void> {
    if (!this.location) return;
    const loc = this.location;
    this.location = undefined;
    try {
      await fetch(loc, { method: 'DELETE', headers: this.o.token ? { authorization: `Bearer ${this.o.token}` } : {}, signal: AbortSignal.timeout(Math.min(this.o.timeoutMs ?? 10_000, 3000)) });
    } catch {
      /* the session ends anyway when the PeerConnection closes (consent freshness) */
    }
  }

  /** close() of a session: stop() without waiting for the DELETE. */
  close(): void {
    void this.stop();
  }

  /** Ends the session: DELETE, then close the peer. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.handlers.rtp = undefined;
    this.handlers.rtcp = undefined;
    await this.sendDelete();
    this.peer.close();
    this.finish('stopped');
    this.setState('closed');
  }
}
