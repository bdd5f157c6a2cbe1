/**
 * Worker of bench/send-floor.ts: bare node-datachannel receivers (one recvonly H.264 track each) that answer the
 * parent's offers, and plain UDP sockets for the raw-sendto reference. Counts what arrives.
 */
import dgram from 'node:dgram';
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { serve } from './ipc.js';

const peers: Array<{ pc: PeerConnection; tracks: Track[] }> = [];
const sockets: dgram.Socket[] = [];
let received = 0;

serve(
  {
    answer: (offer: string) =>
      new Promise<string>((resolve, reject) => {
        const pc = new nodeDataChannel.PeerConnection('floor-rx', { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
        const rec = { pc, tracks: [] as Track[] };
        peers.push(rec);
        pc.onTrack((t) => {
          rec.tracks.push(t); // held: a collected Track goes silent
          t.onMessage(() => void received++);
        });
        pc.onGatheringStateChange((s) => {
          if (s === 'complete') resolve(pc.localDescription()!.sdp);
        });
        try {
          pc.setRemoteDescription(offer, 'offer');
          pc.setLocalDescription('answer');
        } catch (e) {
          reject(e as Error);
        }
      }),
    udp: async (n: number) => {
      const ports: number[] = [];
      for (let i = 0; i < n; i++) {
        const s = dgram.createSocket('udp4');
        s.on('message', () => void received++);
        await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
        sockets.push(s);
        ports.push(s.address().port);
      }
      return ports;
    },
    received: () => received,
    reset: () => {
      for (const p of peers.splice(0)) p.pc.close();
      for (const s of sockets.splice(0)) s.close();
      received = 0;
      return true;
    },
  },
  () => {
    for (const p of peers) p.pc.close();
    nodeDataChannel.cleanup();
  },
);
