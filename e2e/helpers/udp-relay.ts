/**
 * A small UDP impairment relay for WebRTC tests. This kernel has no `netem`, so loss, jitter and blackouts
 * are made in user space: the relay sits between a WebRTC client and a server's ICE candidate. The client is told
 * (through its SDP answer) that the relay's client-facing socket is the server; the server sees the relay's
 * server-facing socket as a peer-reflexive candidate. Datagrams are forwarded both ways, impaired per direction.
 *
 *   client ──▶ [clientSide socket] ──up──▶ [serverSide socket] ──▶ server's candidate
 *   client ◀── [clientSide socket] ◀─down── [serverSide socket] ◀── server
 *
 * Random loss and jitter hit only SRTP/SRTCP (RFC 7983: first byte 128–191), so ICE (STUN, 0–3) and DTLS (20–63)
 * setup is never what gets measured; a blackout drops everything, as a pulled cable does.
 *
 * API
 *   const r = await UdpRelay.start({ bindAddress: '127.0.0.2', target, seed: 1, up: { loss: 0.01 } })
 *   r.address · r.port                   // what goes into the client's answer
 *   r.setTarget({ address, port })       // the server's real candidate (may come after start)
 *   r.impair('up' | 'down', { loss, jitterMs: [min, max] })
 *   const back = await r.blackout(2000)  // wall-clock ms when the link returned (also r.blackouts)
 *   r.counters.up.forwarded / .dropped / .blackoutDropped
 *   r.kernelDrops()                      // datagrams lost to a full socket buffer: must stay 0
 *   await r.close()
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mulberry32 } from '@stagecast/rtc/testing';

export type Direction = 'up' | 'down';

export interface Impairment {
  /** Probability in [0, 1] that an SRTP/SRTCP datagram is dropped. */
  loss?: number;
  /** Each SRTP/SRTCP datagram is delayed by its own uniform draw in [min, max] ms, so packets reorder. */
  jitterMs?: [number, number];
}

export interface RelayOptions {
  /** Address both sockets bind to (inside a test namespace: 127.0.0.2). */
  bindAddress: string;
  /** The server's candidate; may be given later with setTarget(). Datagrams from the client before then are dropped. */
  target?: Endpoint;
  /** Seed of the PRNG deciding loss and delay; the same seed and traffic give the same decisions. Default: random. */
  seed?: number;
  up?: Impairment;
  down?: Impairment;
}

export interface Endpoint {
  address: string;
  port: number;
}

export interface DirectionCounters {
  /** Datagrams that reached the other side (delayed ones count when sent). */
  forwarded: number;
  /** SRTP/SRTCP datagrams dropped by random loss. */
  dropped: number;
  /** Datagrams of any kind dropped during a blackout. */
  blackoutDropped: number;
  /** SRTP/SRTCP datagrams that went through the impairment (for the loss rate: dropped / impaired). */
  impaired: number;
}

export interface BlackoutRecord {
  /** Wall-clock ms (Date.now()) when the link went down and came back. */
  startedAt: number;
  returnedAt: number;
}

/** RFC 7983 demultiplexing: 128–191 is RTP/RTCP (here always SRTP/SRTCP). */
export const isSrtp = (msg: Buffer): boolean => msg.length > 0 && msg[0]! >= 128 && msg[0]! <= 191;

/**
 * Socket buffers large enough for a keyframe burst at OBS bitrates (a few hundred 1.2-kB datagrams at once): the
 * relay must drop only what it is told to. Capped by net.core.rmem_max / wmem_max; kernelDrops() tells if it was not.
 */
const SOCKET_BUFFER = 4 * 1024 * 1024;

function bind(address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, address, () => {
      s.off('error', reject);
      for (const set of [() => s.setRecvBufferSize(SOCKET_BUFFER), () => s.setSendBufferSize(SOCKET_BUFFER)]) {
        try {
          set();
        } catch {
          /* above the system's maximum: the kernel keeps its default */
        }
      }
      resolve(s);
    });
  });
}

/** Datagrams the kernel dropped at these local ports' receive queues (/proc/net/udp `drops`, this namespace). */
export function udpDrops(ports: number[]): number {
  let text = '';
  try {
    text = readFileSync('/proc/net/udp', 'utf8');
  } catch {
    return 0;
  }
  let n = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const port = parseInt(f[1]?.split(':')[1] ?? '', 16);
    if (ports.includes(port)) n += Number(f[f.length - 1]) || 0;
  }
  return n;
}

export class UdpRelay {
  readonly counters: Record<Direction, DirectionCounters> = {
    up: { forwarded: 0, dropped: 0, blackoutDropped: 0, impaired: 0 },
    down: { forwarded: 0, dropped: 0, blackoutDropped: 0, impaired: 0 },
  };
  readonly blackouts: BlackoutRecord[] = [];
  private readonly impairments: Record<Direction, Impairment>;
  private readonly random: () => number;
  private target: Endpoint | undefined;
  private client: Endpoint | undefined;
  private darkUntil = 0;
  private closed = false;
  /** Delayed datagrams and blackout timers, cleared by close() so nothing keeps the process alive. */
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly clientSide: Socket,
    private readonly serverSide: Socket,
    o: RelayOptions,
  ) {
    this.target = o.target;
    this.impairments = { up: { ...o.up }, down: { ...o.down } };
    this.random = mulberry32(o.seed ?? Math.floor(Math.random() * 2 ** 32));
    clientSide.on('message', (msg, from) => this.fromClient(msg, from));
    serverSide.on('message', (msg, from) => this.fromServer(msg, from));
    // A send to a closed port (ICMP unreachable) must not kill the test process.
    clientSide.on('error', () => undefined);
    serverSide.on('error', () => undefined);
  }

  static async start(o: RelayOptions): Promise<UdpRelay> {
    const a = await bind(o.bindAddress);
    const b = await bind(o.bindAddress).catch((err) => {
      a.close();
      throw err;
    });
    return new UdpRelay(a, b, o);
  }

  /** The client-facing address: what replaces the server's candidate in the client's answer. */
  get address(): string {
    return this.clientSide.address().address;
  }
  get port(): number {
    return this.clientSide.address().port;
  }
  /** The server-facing socket's address: what the server learns as the client's (peer-reflexive) candidate. */
  get serverFacing(): Endpoint {
    const a = this.serverSide.address();
    return { address: a.address, port: a.port };
  }
  get clientAddress(): Endpoint | undefined {
    return this.client;
  }

  /**
   * Datagrams the kernel dropped before the relay read them (full receive buffer): loss the relay did not choose,
   * which would make the figures wrong. Should stay 0.
   */
  kernelDrops(): number {
    return this.closed ? 0 : udpDrops([this.clientSide.address().port, this.serverSide.address().port]);
  }

  setTarget(t: Endpoint): void {
    this.target = t;
  }

  impair(dir: Direction, i: Impairment): void {
    this.impairments[dir] = { ...i };
  }

  /** Drops every datagram both ways for `ms`; resolves with the wall-clock time the link returned. */
  blackout(ms: number): Promise<number> {
    const startedAt = Date.now();
    this.darkUntil = startedAt + ms;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        // The deadline check in pass() already lets packets through from darkUntil on; record that instant.
        const returnedAt = Math.max(Date.now(), this.darkUntil);
        this.blackouts.push({ startedAt, returnedAt });
        resolve(returnedAt);
      }, ms);
      this.timers.add(t);
    });
  }

  /** Idempotent: drops what is still delayed, closes both sockets. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([this.clientSide, this.serverSide].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private fromClient(msg: Buffer, from: RemoteInfo): void {
    // The first datagram names the client (its ICE host candidate); later ones from elsewhere are not ours.
    if (!this.client) this.client = { address: from.address, port: from.port };
    else if (from.address !== this.client.address || from.port !== this.client.port) return;
    if (!this.target) return;
    this.pass('up', msg, this.serverSide, this.target);
  }

  private fromServer(msg: Buffer, from: RemoteInfo): void {
    if (!this.target || from.address !== this.target.address || from.port !== this.target.port || !this.client) return;
    this.pass('down', msg, this.clientSide, this.client);
  }

  private pass(dir: Direction, msg: Buffer, out: Socket, to: Endpoint): void {
    const c = this.counters[dir];
    if (Date.now() < this.darkUntil) {
      c.blackoutDropped++;
      return;
    }
    const imp = this.impairments[dir];
    let delay = 0;
    if (isSrtp(msg)) {
      c.impaired++;
      if (imp.loss && this.random() < imp.loss) {
        c.dropped++;
        return;
      }
      if (imp.jitterMs) {
        const [lo, hi] = imp.jitterMs;
        delay = lo + this.random() * (hi - lo);
      }
    }
    if (delay < 0.5) {
      this.send(dir, msg, out, to);
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      // Still in flight when the link went dark: lost with it.
      if (Date.now() < this.darkUntil) c.blackoutDropped++;
      else this.send(dir, msg, out, to);
    }, delay);
    this.timers.add(t);
  }

  private send(dir: Direction, msg: Buffer, out: Socket, to: Endpoint): void {
    if (this.closed) return;
    this.counters[dir].forwarded++;
    out.send(msg, to.port, to.address);
  }
}
