/**
 * Real WebRTC in one process (node-datachannel on 127.0.0.1): a WHIPClient broadcaster → the Media Server's
 * WHIP ingest → Router → a WHIPClient leg per stage → a WhipEndpoint standing in for each stage. The API
 * Server is the in-test stand-in. Proves forwarding, a stage created while live, a broadcaster that
 * reconnects (same stage sessions, continuous SSRC/sequence) and a deleted stage's session DELETEd.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localStageArn, type StageArn } from '@stagecast/protocol';
import { WHIPClient } from '@stagecast/rtc';
import { SyntheticPublisher } from '@stagecast/rtc/testing';
import { parseConfig } from '../src/config.js';
import { createMediaServer } from '../src/system.js';
import { startFakeApi } from './helpers/fake-api.js';
import { testLogger } from './helpers/log.js';
import { startStages } from './helpers/rtc-stages.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'media-secret-0123456789';
const INGEST_TOKEN = 'obs-long-lived-token-0123456789';

test('real WebRTC: the broadcast reaches every stage, a stage created while live gets frames at once, a reconnecting broadcaster resumes on the same stage sessions, a deleted stage is DELETEd', { timeout: 60_000 }, async (t) => {
  const stages = await startStages();
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 200, whipBase: stages.base });
  const { log, logs } = testLogger('info');
  const config = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    MEDIA_SERVER_SECRET: SECRET,
    API_SERVER_URL: api.url,
    INGEST_TOKEN,
    RTC_BIND_ADDRESS: '127.0.0.1',
    SERVER_ID: 'ms-rtc',
  });
  const ms = await createMediaServer(config, log, { backoff: { baseMs: 50, capMs: 500 } });
  const clients: WHIPClient[] = [];
  let pump: NodeJS.Timeout | undefined;
  const A = localStageArn('stageA');
  const B = localStageArn('stageB');
  const first = (id: string) => stages.rx.get(id)?.[0];
  try {
    api.stages.add(A);
    await ms.start();
    await waitFor(() => ms.stageManager.legFor(A)?.state === 'connected', { timeoutMs: 10_000, what: 'leg into stage A before any broadcaster' });

    // A broadcaster publishes by WHIP (an H.264 + Opus offer, like OBS's).
    const publish = async (seed: number) => {
      const c = new WHIPClient({ url: `http://127.0.0.1:${ms.port}/whip`, token: INGEST_TOKEN, bindAddress: '127.0.0.1', id: `bc${seed}` });
      clients.push(c);
      await c.start();
      assert.ok(await c.connected(10_000), 'broadcaster connected');
      const v = c.sinkPort.video!;
      const a = c.sinkPort.audio!;
      const pub = new SyntheticPublisher({ videoSsrc: v.ssrc, audioSsrc: a.ssrc, videoSeq: 100 * seed, audioSeq: 7 * seed, videoTs: 9000 * seed, audioTs: 4800 * seed, packetsPerFrame: 3, payloadBytes: 600 });
      pub.videoPt = v.payloadType;
      pub.audioPt = a.payloadType;
      let frame = 0;
      clearInterval(pump);
      pump = setInterval(() => {
        for (const p of pub.videoFrame(frame++ % 30 === 0)) c.sinkPort.sendRtp('video', p);
        c.sinkPort.sendRtp('audio', pub.audioPacket());
      }, 33);
      return c;
    };
    const bc1 = await publish(1);
    await waitFor(() => (first('stageA')?.video.length ?? 0) > 30, { timeoutMs: 10_000, what: 'video at stage A' });
    assert.ok((first('stageA')?.audio ?? 0) > 0, 'audio at stage A');

    // A stage created while live receives frames within 1 s of its creation (cached keyframe first).
    const created = Date.now();
    api.createStage(B);
    await waitFor(() => (first('stageB')?.video.length ?? 0) > 0, { timeoutMs: 5000, what: 'video at stage B' });
    const firstFrameMs = first('stageB')!.video[0]!.at - created;
    assert.ok(firstFrameMs < 1000, `first packet on the new stage after ${firstFrameMs} ms`);
    t.diagnostic(`first packet on a stage created while live: ${firstFrameMs} ms`);

    // The broadcaster leaves (DELETE) and comes back with a new session: same stage sessions, media resumes.
    clearInterval(pump);
    await bc1.stop();
    await waitFor(() => !ms.stageManager.publisherOnline, { what: 'publisher offline' });
    const before = first('stageA')!.video.length;
    await publish(2);
    await waitFor(() => first('stageA')!.video.length > before + 30, { timeoutMs: 10_000, what: 'frames after the broadcaster returned' });
    assert.equal(stages.rx.get('stageA')!.length, 1, 'no new signalling to the stage');
    assert.equal(first('stageA')!.closed, false);
    const va = first('stageA')!.video;
    assert.equal(new Set(va.map((p) => p.ssrc)).size, 1, 'one SSRC on the stage across the reconnect');
    assert.equal(va[before]!.seq, (va[before - 1]!.seq + 1) & 0xffff, 'sequence continues across the reconnect');

    // A deleted stage's WHIP session is ended within a second.
    const t0 = Date.now();
    api.deleteStage(A as StageArn);
    await waitFor(() => first('stageA')!.closed, { timeoutMs: 1000, what: 'stage A session DELETEd' });
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(first('stageB')!.closed, false);
    const st = ms.stats();
    assert.equal(st.stages.connected, 1);
    assert.equal(st.stream?.width, 640);
  } catch (err) {
    console.log(logs.text);
    throw err;
  } finally {
    clearInterval(pump);
    for (const c of clients) await c.stop();
    await ms.stop();
    await api.stop();
    await stages.close();
  }
});
