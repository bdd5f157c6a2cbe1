/**
 * A node-datachannel PeerConnection with a typed lifecycle. It keeps a reference to every Track it owns (a Track
 * that is garbage-collected goes silent) and its close() releases all of them, once.
 */
import { EventEmitter } from 'node:events';
import nodeDataChannel from 'node-datachannel';
import type { Audio, PeerConnection, Track, Video } from 'node-datachannel';
import { toNodeDatachannelIce, type IceServerConfig } from './http.js';

export interface PeerOptions {
  /** Label for libdatachannel's own logs. */
  name: string;
  /** Bind ICE to one local address (tests on 127.0.0.1); unset = gather on every interface. */
  bindAddress?: string;
  iceServers?: readonly IceServerConfig[];
  portRangeBegin?: number;
  portRangeEnd?: number;
}

export type PeerState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

export interface PeerStats {
  state: PeerState;
  bytesSent: number;
  bytesReceived: number;
  rttMs?: number;
  selectedPair?: { local: string; remote: string };
}

interface PeerEvents {
  state: [PeerState];
  track: [Track];
  closed: [];
}

/** Every Peer not yet closed: shutdownRtc() closes them before it stops node-datachannel's threads. */
const livePeers = new Set<Peer>();

/**
 * Closes every Peer and stops node-datachannel's native threads, which otherwise keep the process alive for
 * minutes after the last connection. Call once, when the process is done with WebRTC (shutdown, end of a test file).
 */
export async function shutdownRtc(): Promise<void> {
  for (const p of [...livePeers]) p.close();
  // Let libdatachannel deliver the close callbacks queued for the JS thread before its threads are stopped.
  await new Promise((r) => setTimeout(r, 50));
  nodeDataChannel.cleanup();
}

export class Peer extends EventEmitter<PeerEvents> {
  readonly pc: PeerConnection;
  private readonly tracks: Track[] = [];
  private closedFlag = false;
  private currentState: PeerState = 'new';
  private failedFlag = false;

  constructor(o: PeerOptions) {
    super();
    this.pc = new nodeDataChannel.PeerConnection(o.name, {
      iceServers: toNodeDatachannelIce(o.iceServers ?? []),
      disableAutoNegotiation: true,
      ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}),
      ...(o.portRangeBegin ? { portRangeBegin: o.portRangeBegin, portRangeEnd: o.portRangeEnd ?? 65535 } : {}),
    });
    this.pc.onStateChange((s) => {
      if (this.closedFlag) return;
      this.currentState = s as PeerState;
      if (s === 'failed') this.failedFlag = true;
      this.emit('state', this.currentState);
      // Deferred: closing from inside libdatachannel's own callback is not safe.
      if (s === 'failed' || s === 'closed') setImmediate(() => this.close());
    });
    livePeers.add(this);
    this.pc.onTrack((t) => {
      this.tracks.push(t);
      this.emit('track', t);
    });
  }

  get state(): PeerState {
    return this.closedFlag ? 'closed' : this.currentState;
  }
  get closed(): boolean {
    return this.closedFlag;
  }
  /** True once ICE failed (consent lost or never established); stays true after close(). */
  get failed(): boolean {
    return this.failedFlag;
  }

  addTrack(media: Video | Audio): Track {
    const t = this.pc.addTrack(media);
    this.tracks.push(t);
    return t;
  }

  /** Resolves when ICE gathering is complete (every candidate is in the local description), or after timeoutMs. */
  gathered(timeoutMs = 5000): Promise<void> {
    if (this.pc.gatheringState() === 'complete') return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.pc.onGatheringStateChange((s) => {
        if (s === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  /** Resolves true once connected, false when it fails, closes or times out. */
  connected(timeoutMs = 10_000): Promise<boolean> {
    if (this.currentState === 'connected') return Promise.resolve(true);
    if (this.closedFlag) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(t);
        this.off('state', onState);
        this.off('closed', onClosed);
        resolve(v);
      };
      const onState = (s: PeerState) => {
        if (s === 'connected') done(true);
      };
      const onClosed = () => done(false);
      const t = setTimeout(() => done(false), timeoutMs);
      this.on('state', onState);
      this.on('closed', onClosed);
    });
  }

  localSdp(): string {
    return this.pc.localDescription()?.sdp ?? '';
  }

  rttMs(): number | undefined {
    if (this.closedFlag) return undefined;
    const r = this.pc.rtt();
    return r >= 0 ? r : undefined;
  }

  bytesReceived(): number {
    return this.closedFlag ? 0 : this.pc.bytesReceived();
  }
  bytesSent(): number {
    return this.closedFlag ? 0 : this.pc.bytesSent();
  }

  /** Transport counters and the selected pair ("address:port" each side), cheap enough for a stats poll. */
  stats(): PeerStats {
    if (this.closedFlag) return { state: 'closed', bytesSent: 0, bytesReceived: 0 };
    let pair: { local: string; remote: string } | undefined;
    try {
      const p = this.pc.getSelectedCandidatePair();
      if (p) pair = { local: `${p.local.address}:${p.local.port}`, remote: `${p.remote.address}:${p.remote.port}` };
    } catch {
      /* not connected yet */
    }
    const rtt = this.rttMs();
    return {
      state: this.currentState,
      bytesSent: this.pc.bytesSent(),
      bytesReceived: this.pc.bytesReceived(),
      ...(rtt === undefined ? {} : { rttMs: rtt }),
      ...(pair ? { selectedPair: pair } : {}),
    };
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.currentState = 'closed';
    livePeers.delete(this);
    for (const t of this.tracks.splice(0)) {
      try {
        t.close();
      } catch {
        /* already closed by libdatachannel */
      }
    }
    try {
      this.pc.close();
    } catch {
      /* already closed */
    }
    this.emit('closed');
    this.removeAllListeners();
  }
}

/** Adds `a=rtcp-mux-only` to every m-section that has rtcp-mux (RFC 9725 §4.4.1); libdatachannel omits it. */
export function withRtcpMuxOnly(sdp: string): string {
  return sdp.replace(/\r\na=rtcp-mux(?=\r\n)/g, '\r\na=rtcp-mux\r\na=rtcp-mux-only');
}
