/**
 * Real WebRTC through a stage: packages/rtc's WHIPClient publishes into the stage by WHIP, a node-datachannel
 * recvonly viewer plays it by WHEP, both bound to 127.0.0.1; media arrives, wrong tokens are refused, a full stage
 * answers 503, and the viewer's join and leave reach the (fake) API Server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WHIPClient, WhipHttpError } from '@stagecast/rtc';
import { RtcStageFixture } from './rtc-fixture.js';
import { waitFor } from './helpers.js';
import { whepViewer } from './whep-viewer.js';

function opus(seq: number, ts: number, ssrc: number, pt = 111): Uint8Array {
  const b = new Uint8Array(12 + 40);
  const dv = new DataView(b.buffer);
  b[0] = 0x80;
  b[1] = pt;
  dv.setUint16(2, seq & 0xffff);
  dv.setUint32(4, ts >>> 0);
  dv.setUint32(8, ssrc >>> 0);
  b.fill(0xf8, 12);
  return b;
}

describe('a stage over real WebRTC (127.0.0.1)', () => {
  const f = new RtcStageFixture({ MAX_VIEWERS_PER_STAGE: '1' });
  before(() => f.start());
  after(() => f.stop());
  const newStage = () => f.newStage();

  test('a WHIP publisher’s media reaches a WHEP viewer; joins and leaves reach the API Server; a second viewer gets 503', async () => {
    const stage = await newStage();
    const viewer = await whepViewer(stage.whepUrl, await f.api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'viewer-1' }));
    f.cleanup.push(() => viewer.stop());
    assert.equal(viewer.status, 201, viewer.body);
    assert.ok(await viewer.peer.connected(10_000), 'viewer connected');

    const client = new WHIPClient({
      url: stage.whipUrl,
      token: await f.api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'pub-1' }),
      bindAddress: '127.0.0.1',
    });
    f.cleanup.push(() => client.stop());
    await client.start();
    assert.ok(await client.connected(10_000), 'publisher connected');

    const ssrc = client.sinkPort.audio!.ssrc;
    let seq = 1;
    await waitFor(
      () => {
        for (let i = 0; i < 5; i++, seq++) client.sinkPort.sendRtp('audio', opus(seq, seq * 960, ssrc));
        return viewer.counts.audio >= 20;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'audio at the viewer' },
    );
    const stats = f.server.stages.room(stage.stageId).stats();
    assert.equal(stats.publisher.state, 'connected');
    assert.equal(stats.viewers, 1);
    assert.ok(stats.packetsReceived > 0 && stats.packetsSent > 0);

    // MAX_VIEWERS_PER_STAGE=1: the next viewer is refused clearly.
    const second = await whepViewer(stage.whepUrl, await f.api.token({ stageArn: stage.stageArn, capability: 'subscribe' }));
    f.cleanup.push(() => second.stop());
    assert.equal(second.status, 503);
    assert.ok(Number(second.res.headers.get('retry-after')) > 0);

    const mine = () => f.api.events.filter((e) => e.stageArn === stage.stageArn && e.kind === 'subscriber');
    await waitFor(() => mine().some((e) => e.type === 'joined' && e.participantId === 'viewer-1'), { what: 'viewer joined event' });
    await viewer.stop();
    await waitFor(() => mine().some((e) => e.type === 'left' && e.participantId === 'viewer-1'), { what: 'viewer left event' });
  });

  test('WHIP with a wrong token: 401 without or with a forged one, 403 with a subscribe token', async () => {
    const stage = await newStage();
    const attempt = async (token?: string) => {
      const c = new WHIPClient({ url: stage.whipUrl, ...(token ? { token } : {}), bindAddress: '127.0.0.1' });
      f.cleanup.push(() => c.stop());
      const err = await c.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof WhipHttpError, String(err));
      return err.status;
    };
    assert.equal(await attempt(), 401);
    assert.equal(await attempt(await f.api.forgedToken({ stageArn: stage.stageArn, capability: 'publish' })), 401);
    assert.equal(await attempt(await f.api.token({ stageArn: stage.stageArn, capability: 'subscribe' })), 403);
  });
});
