/**
 * What WHIP and WHEP sessions share: an unguessable id, a strong ETag for the ICE session, the Peer, trickle
 * candidates, consent-loss detection, and an idempotent close() with a reason.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Peer, PeerState } from './peer.js';
import type { SdpFrag } from './sdp.js';

export interface SessionStats {
  id: string;
  state: PeerState;
  createdAt: number;
  bytesSent: number;
  bytesReceived: number;
  rttMs?: number;
  selectedPair?: { local: string; remote: string };
  packetsReceived?: number;
  rtcpReceived?: number;
  packetsSent?: number;
  sendFailures?: number;
}

export interface SessionEvents {
  connected: [];
  state: [PeerState];
  closed: [string];
}

/** ≥128 bits from the CSPRNG (RFC 9725 §5: session URLs must be unguessable). */
export const newSessionId = () => randomBytes(18).toString('base64url');
export const newEtag = () => `"${randomBytes(12).toString('base64url')}"`;

/** How long a session may stay 'disconnected' (consent lost, RFC 7675) before it is closed. */
const DISCONNECTED_GRACE_MS = 10_000;

export abstract class MediaSessionBase extends EventEmitter<SessionEvents> {
  readonly id = newSessionId();
  etag = newEtag();
  readonly createdAt = Date.now();
  /** The Bearer token the session was created with ('' when none). */
  token = '';
  private closedReason: string | undefined;
  private disconnectTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly peer: Peer,
    /** Remote ICE ufrag from the offer: a PATCH with another one asks for an ICE restart. */
    readonly remoteUfrag: string | undefined,
    protected readonly firstMid: string,
  ) {
    super();
    peer.on('state', (s) => {
      this.emit('state', s);
      if (s === 'connected') {
        clearTimeout(this.disconnectTimer);
        this.disconnectTimer = undefined;
        this.emit('connected');
      } else if (s === 'disconnected') {
        this.disconnectTimer ??= setTimeout(() => this.close('consent lost'), DISCONNECTED_GRACE_MS);
        this.disconnectTimer.unref();
      }
    });
    peer.on('closed', () => this.close(peer.failed ? 'ice failed' : 'peer closed'));
  }

  get state(): PeerState {
    return this.peer.state;
  }

  /**
   * Transport statistics; subclasses add their packet and RTP byte counters. node-datachannel's bytes and rtt()
   * come from SCTP: for a media-only peer they stay 0 / absent (RTT must come from RTCP SR/RR).
   */
  stats(): SessionStats {
    const { state: _state, ...transport } = this.peer.stats();
    return { id: this.id, state: this.state, createdAt: this.createdAt, ...transport };
  }
  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Trickled remote candidates (RFC 8840). Unusable ones (mDNS .local, TCP) are dropped silently (RFC 9725 §4.3.2). */
  addRemoteCandidates(frag: SdpFrag): number {
    let added = 0;
    for (const c of frag.candidates) {
      const f = c.candidate.split(' ');
      if ((f[2] ?? '').toLowerCase() !== 'udp' || (f[4] ?? '').endsWith('.local')) continue;
      try {
        this.peer.pc.addRemoteCandidate(`candidate:${c.candidate}`.replace(/^candidate:candidate:/, 'candidate:'), c.mid ?? this.firstMid);
        added++;
      } catch {
        /* a candidate libdatachannel cannot use is ignored, as the RFC asks */
      }
    }
    return added;
  }

  close(reason = 'closed'): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    clearTimeout(this.disconnectTimer);
    this.onClose();
    this.peer.close();
    this.emit('closed', reason);
    this.removeAllListeners();
  }

  /** Subclasses release what they own beyond the Peer. */
  protected onClose(): void {}
}
