/**
 * Real WebRTC through a stage: packages/rtc's WHIPClient publishes into the stage by WHIP, a node-datachannel
 * recvonly viewer plays it by WHEP, both bound to 127.0.0.1; media arrives, wrong tokens are refused, a full stage
 * answers 503, and the viewer's join and leave reach the (fake) API Server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import nodeDataChannel from 'node-datachannel';
import { WHIPClient, WhipHttpError } from '@stagecast/rtc';
import { CreateStageResponseSchema, type LocalStage } from '@stagecast/protocol';
import type { StageServer } from '../src/app.js';
import { createRtcPlane } from '../src/services/rtc-plane.js';
import { startFakeApi, type FakeApi } from './fake-api.js';
import { admin, startInProcess, tempDir, waitFor } from './helpers.js';
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
  let api: FakeApi;
  let server: StageServer;
  let base: string;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const cleanup: Array<() => Promise<void> | void> = [];

  before(async () => {
    api = await startFakeApi();
    dir = await tempDir();
    ({ server, base } = await startInProcess(
      { DATA_DIR: dir.path, API_SERVER_URL: api.url, RTC_BIND_ADDRESS: '127.0.0.1', MAX_VIEWERS_PER_STAGE: '1' },
      { plane: createRtcPlane(), reporter: { flushDelayMs: 10 } },
    ));
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await server?.stop();
    await api?.close();
    await dir?.remove();
    // node-datachannel's threads keep the process alive until its global cleanup.
    nodeDataChannel.cleanup();
  });

  const newStage = async (): Promise<LocalStage> => CreateStageResponseSchema.parse(await (await admin(base).create()).json()).stage;

  test('a WHIP publisher’s media reaches a WHEP viewer; joins and leaves reach the API Server; a second viewer gets 503', async () => {
    const stage = await newStage();
    const viewer = await whepViewer(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'viewer-1' }));
    cleanup.push(() => viewer.stop());
    assert.equal(viewer.status, 201, viewer.body);
    assert.ok(await viewer.peer.connected(10_000), 'viewer connected');

    const client = new WHIPClient({
      url: stage.whipUrl,
      token: await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'pub-1' }),
      bindAddress: '127.0.0.1',
    });
    cleanup.push(() => client.stop());
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
    const stats = server.stages.room(stage.stageId).stats();
    assert.equal(stats.publisher.state, 'connected');
    assert.equal(stats.viewers, 1);
    assert.ok(stats.packetsReceived > 0 && stats.packetsSent > 0);

    // MAX_VIEWERS_PER_STAGE=1: the next viewer is refused clearly.
    const second = await whepViewer(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }));
    cleanup.push(() => second.stop());
    assert.equal(second.status, 503);
    assert.ok(Number(second.res.headers.get('retry-after')) > 0);

    const mine = () => api.events.filter((e) => e.stageArn === stage.stageArn && e.kind === 'subscriber');
    await waitFor(() => mine().some((e) => e.type === 'joined' && e.participantId === 'viewer-1'), { what: 'viewer joined event' });
    await viewer.stop();
    await waitFor(() => mine().some((e) => e.type === 'left' && e.participantId === 'viewer-1'), { what: 'viewer left event' });
  });

  test('WHIP with a wrong token: 401 without or with a forged one, 403 with a subscribe token', async () => {
    const stage = await newStage();
    const attempt = async (token?: string) => {
      const c = new WHIPClient({ url: stage.whipUrl, ...(token ? { token } : {}), bindAddress: '127.0.0.1' });
      cleanup.push(() => c.stop());
      const err = await c.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof WhipHttpError, String(err));
      return err.status;
    };
    assert.equal(await attempt(), 401);
    assert.equal(await attempt(await api.forgedToken({ stageArn: stage.stageArn, capability: 'publish' })), 401);
    assert.equal(await attempt(await api.token({ stageArn: stage.stageArn, capability: 'subscribe' })), 403);
  });
});
