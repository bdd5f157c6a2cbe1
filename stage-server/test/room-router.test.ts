/**
 * The StageRoom on packages/rtc's real Router (the transport still in memory): the publisher's RTP reaches a viewer
 * rewritten with the viewer's own SSRC and payload type, a viewer that joined first gets it too, and a replaced
 * publisher's stream continues on the same viewer without a break in sequence numbers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Router } from '@stagecast/rtc';
import { CreateStageResponseSchema, type LocalStage } from '@stagecast/protocol';
import type { StageServer } from '../src/app.js';
import { startFakeApi, type FakeApi } from './fake-api.js';
import { FakePlane, type FakeSession } from './fake-plane.js';
import { admin, startInProcess, tempDir, waitFor } from './helpers.js';

/** A minimal Opus RTP packet: V=2, PT=111. */
function opus(seq: number, ts: number, ssrc: number): Uint8Array {
  const b = new Uint8Array(12 + 20);
  const v = new DataView(b.buffer);
  b[0] = 0x80;
  b[1] = 111;
  v.setUint16(2, seq & 0xffff);
  v.setUint32(4, ts >>> 0);
  v.setUint32(8, ssrc >>> 0);
  b.fill(0xab, 12);
  return b;
}
const rtpSeq = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset).getUint16(2);
const rtpSsrc = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset).getUint32(8);

describe('StageRoom on the real Router', () => {
  let api: FakeApi;
  let server: StageServer;
  let base: string;
  let plane: FakePlane;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    api = await startFakeApi();
    dir = await tempDir();
    plane = new FakePlane(() => new Router());
    ({ server, base } = await startInProcess({ DATA_DIR: dir.path, API_SERVER_URL: api.url }, { plane }));
  });
  after(async () => {
    await server?.stop();
    await api?.close();
    await dir?.remove();
  });

  async function post(url: string, token: string) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` }, body: 'v=0\r\n' });
    assert.equal(res.status, 201);
    return plane.sessions.at(-1)!;
  }

  test('audio from the publisher reaches a viewer that joined before it, with the viewer’s SSRC and payload type', async () => {
    const stage: LocalStage = CreateStageResponseSchema.parse(await (await admin(base).create()).json()).stage;
    const viewer: FakeSession = await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }));
    viewer.connect();
    const pub = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'pub-1' }));
    pub.connect();
    for (let i = 0; i < 10; i++) pub.sendRtp('audio', opus(1000 + i, 960 * i, 0x11111111));
    await waitFor(() => viewer.received.length === 10, { what: '10 packets at the viewer' });
    for (const [kind, p] of viewer.received) {
      assert.equal(kind, 'audio');
      assert.equal(rtpSsrc(p), 0x0a0a0a0a);
      assert.equal(p[1]! & 0x7f, 109);
    }
    const seqs = viewer.received.map(([, p]) => rtpSeq(p));
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], (seqs[i - 1]! + 1) & 0xffff);

    // The same participant reconnects with a new SSRC and random numbering: the viewer's numbering continues.
    const pub2 = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'pub-1' }));
    pub2.connect();
    for (let i = 0; i < 5; i++) pub2.sendRtp('audio', opus(40000 + i, 123456 + 960 * i, 0x22222222));
    await waitFor(() => viewer.received.length === 15, { what: '15 packets at the viewer' });
    const all = viewer.received.map(([, p]) => rtpSeq(p));
    assert.equal(all[10], (all[9]! + 1) & 0xffff);
    assert.ok(viewer.received.every(([, p]) => rtpSsrc(p) === 0x0a0a0a0a));
    // The stats come from the router.
    const stats = server.stages.room(stage.stageId).stats();
    assert.equal(stats.packetsReceived, 15);
    assert.equal(stats.packetsSent, 15);
    assert.equal(stats.publisher.state, 'connected');
  });

  test('a handover to another publisher (another Media Server): the old one feeds the viewer until the new one delivers, and the viewer\'s numbering continues', async () => {
    const stage: LocalStage = CreateStageResponseSchema.parse(await (await admin(base).create()).json()).stage;
    const viewer: FakeSession = await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }));
    viewer.connect();
    const oldPub = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'ms-1-leg' }));
    oldPub.connect();
    for (let i = 0; i < 5; i++) oldPub.sendRtp('audio', opus(2000 + i, 960 * i, 0x33333333));
    const newPub = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'ms-2-leg' }));
    newPub.connect();
    // Both publish during the handover: only the old one reaches the viewer until the new one's first packet.
    for (let i = 5; i < 8; i++) oldPub.sendRtp('audio', opus(2000 + i, 960 * i, 0x33333333));
    await waitFor(() => viewer.received.length === 8, { what: '8 packets of the old publisher' });
    for (let i = 0; i < 5; i++) newPub.sendRtp('audio', opus(9000 + i, 555_000 + 960 * i, 0x44444444));
    oldPub.sendRtp('audio', opus(2008, 960 * 8, 0x33333333));
    await waitFor(() => viewer.received.length === 13, { what: '13 packets at the viewer' });
    await new Promise((r) => setImmediate(r));
    assert.equal(viewer.received.length, 13, 'the old publisher no longer reaches the viewer');
    const seqs = viewer.received.map(([, p]) => rtpSeq(p));
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], (seqs[i - 1]! + 1) & 0xffff, `continuous at ${i}`);
    assert.equal(new Set(viewer.received.map(([, p]) => rtpSsrc(p))).size, 1);
    assert.equal(server.stages.room(stage.stageId).stats().publisher.participantId, 'ms-2-leg');
    assert.equal(server.stages.room(stage.stageId).stats().publisherHandovers, 1);
  });
});
