/**
 * The floor under the fan-out numbers: what one encrypted send costs on this machine with nothing of ours around it.
 * A sender process holds N bare node-datachannel PeerConnections (one sendonly H.264 track each, DTLS-SRTP to
 * receivers in a worker process) and sends the same 1,200-byte RTP packet to each of them, 300 times a second, from
 * the JS thread — what a router's fan-out does, minus the router. The same loop over plain UDP sockets (node:dgram,
 * no SRTP) is the syscall floor. Reported: CPU µs of the sender process (every thread) per send, and the marginal
 * cost of one more send over N=1 (the process's fixed cost — timers, idle native threads — taken out), as fanout-net
 * reports its marginal cost per sink. Keep 1 in --sinks for the marginal column.
 * usage: node --import tsx bench/send-floor.ts [--sinks=1,10,100] [--seconds=10]
 */
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { arg, benchDone, benchFailed, list } from './lib/env.js';
import { spawnWorker } from './lib/ipc.js';
import { cpuMs, machineTicks } from './lib/proc.js';
import { round, table } from './lib/sink-pool.js';

const sinkCounts = list('sinks', '1,10,100');
const seconds = Number(arg('seconds', '10'));
const PPS = 300;
const PAYLOAD = 1200;

interface Row {
  sinks: number;
  srtpSends: number;
  srtpDelivered: number;
  usPerSrtpSend: number;
  /** (CPU(N) − CPU(1)) / (sends(N) − sends(1)): the cost of one more send, without the process's fixed cost. */
  marginalUsPerSrtpSend?: number;
  udpSends: number;
  usPerUdpSend: number;
  marginalUsPerUdpSend?: number;
  srtpCpuMs: number;
  udpCpuMs: number;
  machineBusyPct: number;
}

const stripCandidates = (sdp: string) => sdp.replace(/a=(candidate:[^\r\n]*|end-of-candidates)\r?\n/g, '');

/** Sends PPS packets a second for `seconds` to every target; returns the sender's CPU µs per send. */
async function sendLoop(n: number, send: (i: number, packet: Buffer) => void): Promise<{ sends: number; cpuMs: number; usPerSend: number; busyPct: number }> {
  const pkt = Buffer.alloc(PAYLOAD);
  pkt[0] = 0x80;
  pkt[1] = 102;
  let seq = 0;
  let sends = 0;
  const perTick = PPS / 100; // 10-ms ticks
  const c0 = cpuMs(process.pid);
  const m0 = machineTicks();
  const end = Date.now() + seconds * 1000;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (Date.now() >= end) {
        clearInterval(timer);
        resolve();
        return;
      }
      for (let b = 0; b < perTick; b++) {
        seq++;
        pkt.writeUInt16BE(seq & 0xffff, 2);
        pkt.writeUInt32BE((seq * 3000) >>> 0, 4);
        for (let i = 0; i < n; i++) {
          pkt.writeUInt32BE(1000 + i, 8);
          send(i, pkt);
          sends++;
        }
      }
    }, 10);
  });
  const cpu = cpuMs(process.pid) - c0;
  const m1 = machineTicks();
  return { sends, cpuMs: cpu, usPerSend: (cpu * 1000) / Math.max(1, sends), busyPct: (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total) };
}

async function runOnce(n: number): Promise<Row> {
  const rx = await spawnWorker(fileURLToPath(new URL('./lib/floor-receivers.ts', import.meta.url)));
  const pcs: PeerConnection[] = [];
  const tracks: Track[] = [];
  try {
    let open = 0;
    for (let i = 0; i < n; i++) {
      const pc = new nodeDataChannel.PeerConnection('floor-tx', { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
      pcs.push(pc);
      const v = new nodeDataChannel.Video('0', 'SendOnly');
      v.addH264Codec(102);
      v.addSSRC(1000 + i, 'floor', 'floor', 'video');
      const t = pc.addTrack(v);
      tracks.push(t); // held: a collected Track goes silent
      t.onOpen(() => void open++);
      const gathered = new Promise<void>((r) => pc.onGatheringStateChange((s) => s === 'complete' && r()));
      pc.setLocalDescription('offer');
      await gathered;
      // Without candidates, as our WHIP/WHEP clients offer: the receiver learns our address from our checks.
      pc.setRemoteDescription(await rx.call<string>('answer', stripCandidates(pc.localDescription()!.sdp)), 'answer');
    }
    const deadline = Date.now() + 30_000;
    while (open < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (open < n) throw new Error(`${open} of ${n} tracks opened`);
    const srtp = await sendLoop(n, (i, p) => void tracks[i]!.sendMessageBinary(p));
    const delivered = await rx.call<number>('received');
    for (const pc of pcs) pc.close();
    await rx.call('reset');

    const ports = await rx.call<number[]>('udp', n);
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const udp = await sendLoop(n, (i, p) => sock.send(p, ports[i]!, '127.0.0.1'));
    sock.close();
    return {
      sinks: n,
      srtpSends: srtp.sends,
      srtpDelivered: delivered,
      usPerSrtpSend: round(srtp.usPerSend, 2),
      udpSends: udp.sends,
      usPerUdpSend: round(udp.usPerSend, 2),
      srtpCpuMs: srtp.cpuMs,
      udpCpuMs: udp.cpuMs,
      machineBusyPct: round(Math.max(srtp.busyPct, udp.busyPct), 1),
    };
  } finally {
    for (const pc of pcs) pc.close();
    await rx.stop();
  }
}

const result: Record<string, unknown> = { bench: 'send-floor', node: process.version, seconds, pps: PPS, payloadBytes: PAYLOAD, startedAt: new Date().toISOString() };
const rows: Row[] = [];
try {
  for (const n of sinkCounts) {
    const row = await runOnce(n);
    const one = rows.find((r) => r.sinks === 1);
    if (one && n > 1) {
      row.marginalUsPerSrtpSend = round(((row.srtpCpuMs - one.srtpCpuMs) * 1000) / (row.srtpSends - one.srtpSends), 2);
      row.marginalUsPerUdpSend = round(((row.udpCpuMs - one.udpCpuMs) * 1000) / (row.udpSends - one.udpSends), 2);
    }
    rows.push(row);
    console.error(`N=${n}: ${rows.at(-1)!.usPerSrtpSend} µs per SRTP send, ${rows.at(-1)!.usPerUdpSend} µs per UDP send`);
  }
  result.rows = rows;
  result.ok = true;
  console.log(
    table(
      ['sinks', 'SRTP sends', 'delivered', 'µs/SRTP send', 'marginal µs', 'UDP sends', 'µs/UDP send', 'marginal µs', 'machine %'],
      rows.map((r) => [r.sinks, r.srtpSends, r.srtpDelivered, r.usPerSrtpSend, r.marginalUsPerSrtpSend ?? '—', r.udpSends, r.usPerUdpSend, r.marginalUsPerUdpSend ?? '—', r.machineBusyPct]),
    ),
  );
} catch (err) {
  result.rows = rows;
  benchFailed(result, err);
} finally {
  benchDone('send-floor', result);
  nodeDataChannel.cleanup();
}
