/**
 * The impairment relay of the issue-13 tests (helpers/udp-relay.ts), with plain node:dgram sockets on 127.0.0.1:
 * it forwards both ways, drops about the asked share of SRTP with a seed (and the same share again with the same
 * seed), leaves STUN/DTLS alone, reorders under jitter, drops everything during a blackout, and closes cleanly.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import { UdpRelay, udpDrops, type RelayOptions } from './helpers/udp-relay.js';
import { waitFor } from './helpers/wait.js';

interface Peer {
  sock: Socket;
  port: number;
  got: Buffer[];
}

async function peer(): Promise<Peer> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const p: Peer = { sock, port: sock.address().port, got: [] };
  sock.on('message', (m) => p.got.push(m));
  return p;
}

/** An SRTP-looking datagram (first byte 0x80) carrying its index, or a STUN-looking one (first byte 0x00). */
const srtp = (i: number) => Buffer.from([0x80, 0, i >> 8, i & 0xff]);
const stun = (i: number) => Buffer.from([0x00, 1, i >> 8, i & 0xff]);
const index = (m: Buffer) => m.readUInt16BE(2);

/** A client, a server and a relay between them; the client has already introduced itself (first datagram). */
async function rig(o: Omit<RelayOptions, 'bindAddress' | 'target'>) {
  const client = await peer();
  const server = await peer();
  const relay = await UdpRelay.start({ bindAddress: '127.0.0.1', target: { address: '127.0.0.1', port: server.port }, ...o });
  const up = (m: Buffer) => client.sock.send(m, relay.port, relay.address);
  const down = (m: Buffer) => server.sock.send(m, relay.serverFacing.port, relay.serverFacing.address);
  up(stun(0xffff));
  await waitFor(() => server.got.length === 1, 'the hello reaches the server', 2000, 5);
  server.got.length = 0;
  const close = async () => {
    await relay.close();
    await Promise.all([client.sock, server.sock].map((s) => new Promise<void>((res) => s.close(() => res()))));
  };
  return { client, server, relay, up, down, close };
}

/**
 * Sends n datagrams in bursts of 50, each burst once `settled(sent)` holds for the ones before, so no socket buffer
 * on the way ever overflows (the kernel would drop on its own and spoil the counts).
 */
async function sendAll(send: (m: Buffer) => void, make: (i: number) => Buffer, n: number, settled: (sent: number) => boolean): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    for (let j = i; j < Math.min(n, i + 50); j++) send(make(j));
    const sent = Math.min(n, i + 50);
    await waitFor(() => settled(sent), `${sent} datagrams through the relay`, 5000, 1);
  }
}

test('forwards both ways and learns the client from its first datagram', async () => {
  const r = await rig({});
  try {
    r.up(srtp(1));
    await waitFor(() => r.server.got.length === 1, 'up', 2000, 5);
    r.down(srtp(2));
    await waitFor(() => r.client.got.length === 1, 'down', 2000, 5);
    assert.equal(index(r.server.got[0]!), 1);
    assert.equal(index(r.client.got[0]!), 2);
    assert.deepEqual(r.relay.clientAddress, { address: '127.0.0.1', port: r.client.port });
    assert.equal(r.relay.counters.up.forwarded, 2);
    assert.equal(r.relay.counters.down.forwarded, 1);
  } finally {
    await r.close();
  }
});

test('drops about the asked share of SRTP, the same datagrams for the same seed, and never STUN/DTLS', async () => {
  const n = 4000;
  const dropsWith = async (seed: number) => {
    const r = await rig({ seed, up: { loss: 0.03 } });
    try {
      await sendAll(r.up, srtp, n, (k) => r.server.got.length + r.relay.counters.up.dropped === k);
            const arrived = new Set(r.server.got.map(index));
      // Non-SRTP traffic is never dropped, however lossy the link.
      r.server.got.length = 0;
      await sendAll(r.up, stun, 500, (k) => r.server.got.length === k);
      assert.equal(r.relay.counters.up.impaired, n);
      return { dropped: r.relay.counters.up.dropped, lost: [...Array(n).keys()].filter((i) => !arrived.has(i)) };
    } finally {
      await r.close();
    }
  };
  const a = await dropsWith(7);
  const b = await dropsWith(7);
  // 3 % of 4000 = 120, σ ≈ 10.8: 80–160 is well over 3σ either way.
  assert.ok(a.dropped >= 80 && a.dropped <= 160, `dropped ${a.dropped} of ${n} at 3 %`);
  assert.equal(a.lost.length, a.dropped);
  assert.deepEqual(b.lost, a.lost, 'the same seed drops the same datagrams');
});

test('jitter delays each datagram on its own, so they arrive reordered, and none is lost', async () => {
  const r = await rig({ seed: 3, down: { jitterMs: [0, 20] } });
  try {
    const n = 300;
    const t0 = Date.now();
    await sendAll(r.down, srtp, n, (k) => r.client.got.length === k);
    const order = r.client.got.map(index);
    const inversions = order.filter((v, i) => i > 0 && v < order[i - 1]!).length;
    assert.ok(inversions > 10, `${inversions} out-of-order arrivals`);
    assert.deepEqual([...order].sort((x, y) => x - y), [...Array(n).keys()]);
    assert.ok(Date.now() - t0 >= 10, 'delayed');
    assert.equal(r.relay.counters.down.dropped, 0);
  } finally {
    await r.close();
  }
});

test('a blackout drops everything both ways, then the link returns at the reported time', async () => {
  const r = await rig({});
  try {
    const before = Date.now();
    const back = r.relay.blackout(300);
    r.up(srtp(1));
    r.up(stun(2));
    r.down(srtp(3));
    await waitFor(() => r.relay.counters.up.blackoutDropped === 2 && r.relay.counters.down.blackoutDropped === 1, 'dropped in the dark', 2000, 5);
    const returnedAt = await back;
    assert.ok(returnedAt - before >= 300 && returnedAt - before < 1000, `returned after ${returnedAt - before} ms`);
    assert.deepEqual(r.relay.blackouts, [{ startedAt: r.relay.blackouts[0]!.startedAt, returnedAt }]);
    r.up(srtp(4));
    r.down(srtp(5));
    await waitFor(() => r.server.got.length === 1 && r.client.got.length === 1, 'traffic after the blackout', 2000, 5);
    assert.equal(index(r.server.got[0]!), 4);
    assert.equal(index(r.client.got[0]!), 5);
  } finally {
    await r.close();
  }
});

test('close() with datagrams still delayed leaves no timer or socket behind, and is idempotent', async () => {
  const r = await rig({ down: { jitterMs: [5000, 5000] } });
  r.down(srtp(1));
  await waitFor(() => r.relay.counters.down.impaired === 1, 'one delayed datagram', 2000, 5);
  void r.relay.blackout(60_000);
  await r.close();
  await r.relay.close();
  assert.equal(r.client.got.length, 0);
  // A leaked 5-s or 60-s timer, or an open socket, would keep the test process alive. (libuv frees a closed
  // socket's handle a loop turn or so after its close callback, hence the short wait.)
  const leftovers = () => process.getActiveResourcesInfo().filter((x) => x === 'Timeout' || x === 'UDPWrap');
  await waitFor(() => leftovers().length === 0, 'no timer or socket left', 1000, 5).catch(() => assert.deepEqual(leftovers(), []));
});

test('udpDrops reads the kernel’s drop count of a socket whose receive queue overflowed (the relay’s self-check)', async () => {
  const sink = await peer();
  sink.sock.setRecvBufferSize(4096);
  const src = createSocket('udp4');
  try {
    // Sent synchronously: the sink cannot read until this loop ends, so its small queue overflows.
    for (let i = 0; i < 200; i++) src.send(Buffer.alloc(1000), sink.port, '127.0.0.1');
    await waitFor(() => udpDrops([sink.port]) > 0, 'the kernel counts drops at the sink', 2000, 10);
  } finally {
    await Promise.all([src, sink.sock].map((s) => new Promise<void>((res) => s.close(() => res()))));
  }
});
