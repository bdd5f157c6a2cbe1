/**
 * The relay between Media Servers on real WebRTC in one process: three Media Servers against the fake API Server in
 * pool mode. A and C each hold a broadcaster (WHIPClient, H.264 + Opus); B owns a stage and pulls the broadcast from
 * the origin — first A, then C — into its Router, which forwards into the stage (a real WhipEndpoint standing in).
 * Also: the relay endpoint refuses a POST without the secret, an unreachable origin is retried with backoff, and a
 * broadcaster that connects to the puller itself ends the pull.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { localStageArn, MEDIA_ROUTES, type Origin } from '@stagecast/protocol';
import { shutdownRtc, WHIPClient } from '@stagecast/rtc';
import { SyntheticPublisher } from '@stagecast/rtc/testing';
import { parseConfig } from '../src/config.js';
import { createMediaServer, type MediaServer } from '../src/system.js';
import { startFakeApi, type FakeApi } from './helpers/fake-api.js';
import { testLogger } from './helpers/log.js';
import { startStages } from './helpers/rtc-stages.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'media-secret-0123456789';
const INGEST_TOKEN = 'obs-long-lived-token-0123456789';

after(() => shutdownRtc());

async function mediaServer(api: FakeApi, id: string, log: ReturnType<typeof testLogger>['log']): Promise<MediaServer> {
  const config = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    MEDIA_SERVER_SECRET: SECRET,
    API_SERVER_URL: api.url,
    INGEST_TOKEN,
    RTC_BIND_ADDRESS: '127.0.0.1',
    SERVER_ID: id,
    DRAIN_TIMEOUT_MS: '0',
  });
  const ms = await createMediaServer(config, log.child({ ms: id }), { backoff: { baseMs: 100, capMs: 400 } });
  await ms.start();
  return ms;
}

const originOf = (ms: MediaServer, id: string): Origin => ({ serverId: id as Origin['serverId'], url: `http://127.0.0.1:${ms.port}` });

/** A broadcaster on `ms` sending 30 fps H.264 (3 packets a frame, a keyframe a second) and Opus. */
async function broadcast(ms: MediaServer, seed: number) {
  const c = new WHIPClient({ url: `http://127.0.0.1:${ms.port}/whip`, token: INGEST_TOKEN, bindAddress: '127.0.0.1', id: `bc${seed}` });
  await c.start();
  assert.ok(await c.connected(10_000), 'broadcaster connected');
  const v = c.sinkPort.video!;
  const a = c.sinkPort.audio!;
  const pub = new SyntheticPublisher({ videoSsrc: v.ssrc, audioSsrc: a.ssrc, videoSeq: 1000 * seed, audioSeq: 70 * seed, videoTs: 90_000 * seed, audioTs: 4800 * seed, packetsPerFrame: 3, payloadBytes: 600 });
  pub.videoPt = v.payloadType;
  pub.audioPt = a.payloadType;
  let frame = 0;
  const pump = setInterval(() => {
    for (const p of pub.videoFrame(frame++ % 30 === 0)) c.sinkPort.sendRtp('video', p);
    c.sinkPort.sendRtp('audio', pub.audioPacket());
  }, 33);
  return {
    client: c,
    async stop() {
      clearInterval(pump);
      await c.stop();
    },
  };
}

/** Sequence gaps in arrival order (a delta other than +1), after unwrapping. */
function seqGaps(seqs: number[]): number[] {
  const gaps: number[] = [];
  for (let i = 1; i < seqs.length; i++) {
    const d = (seqs[i]! - seqs[i - 1]! + 0x10000) & 0xffff;
    if (d !== 1) gaps.push(d);
  }
  return gaps;
}

test('relay: a Media Server with a stage and no broadcaster pulls from the origin into its stage, switches origin with continuous sequence numbers, and stops pulling when the broadcaster comes to it', { timeout: 90_000 }, async (t) => {
  const stages = await startStages();
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 200, whipBase: stages.base });
  api.pool = true;
  const { log, logs } = testLogger('info');
  const servers: MediaServer[] = [];
  const broadcasters: { stop(): Promise<void> }[] = [];
  const S = localStageArn('relayed');
  try {
    const msA = await mediaServer(api, 'ms-a', log);
    const msC = await mediaServer(api, 'ms-c', log);
    servers.push(msA, msC);
    broadcasters.push(await broadcast(msA, 1), await broadcast(msC, 2));
    await waitFor(() => msA.stats().ingest === 'broadcaster' && msC.stats().ingest === 'broadcaster', { what: 'both origins fed' });

    api.stages.add(S);
    api.assignments.set(S, { serverId: 'ms-b', previous: null });
    api.origin = originOf(msA, 'ms-a');
    const msB = await mediaServer(api, 'ms-b', log);
    servers.push(msB);
    const rx = () => stages.rx.get('relayed')?.[0];
    await waitFor(() => (rx()?.video.length ?? 0) > 60, { timeoutMs: 15_000, what: 'relayed video at the stage' });
    assert.ok((rx()?.audio ?? 0) > 0, 'relayed audio at the stage');
    const b = msB.stats();
    assert.equal(b.ingest, 'relay');
    assert.equal(b.relay?.pull.state, 'pulling');
    assert.equal(b.relay?.pull.origin, 'ms-a');
    assert.equal(b.publisher.online, false, 'the broadcaster is not on B');
    assert.equal(msA.stats().relay?.sinks.active, 1, 'A serves one relay session');
    assert.equal(msC.stats().relay?.sinks.active, 0);
    await waitFor(() => api.servers.get('ms-b')?.last?.ingest === 'relay', { what: 'B reports ingest relay' });
    assert.equal(msA.stageManager.legCount, 0, 'A publishes into no stage: it is only the origin');
    assert.equal(msA.relayPuller.stats().state, 'idle', 'the origin pulls from no one');

    // The origin changes (origin_changed): B switches to C, the stage keeps one SSRC and continuous sequence numbers.
    const before = rx()!.video.length;
    api.setOrigin(originOf(msC, 'ms-c'));
    await waitFor(() => msB.stats().relay?.pull.origin === 'ms-c' && msB.stats().relay?.pull.state === 'pulling', { timeoutMs: 10_000, what: 'B pulls from C' });
    await waitFor(() => msA.stats().relay?.sinks.active === 0, { timeoutMs: 5000, what: "A's relay session ended (DELETE)" });
    await waitFor(() => rx()!.video.length > before + 90, { timeoutMs: 10_000, what: 'video after the switch' });
    const video = rx()!.video;
    assert.equal(new Set(video.map((p) => p.ssrc)).size, 1, 'one SSRC on the stage across the origin switch');
    assert.equal(stages.rx.get('relayed')!.length, 1, 'the same stage session throughout');
    const gaps = seqGaps(video.slice(Math.max(0, before - 60)).map((p) => p.seq));
    t.diagnostic(`sequence gaps around the switch: ${JSON.stringify(gaps)}`);
    assert.ok(gaps.every((d) => d < 32 || d > 0xffff - 32), `no jump in sequence numbers across the switch: ${JSON.stringify(gaps)}`);
    assert.ok(gaps.length <= 4, `sequence continuous across the switch (gaps ${JSON.stringify(gaps)})`);
    const pull = msB.stats().relay!.pull;
    assert.equal(pull.switches, 1);
    assert.ok(pull.packetsReceived > 0);
    const metrics = await (await fetch(`http://127.0.0.1:${msB.port}/metrics`)).text();
    assert.match(metrics, /stagecast_media_relay_pulling\{origin="ms-c"\} 1/);
    assert.match(metrics, /stagecast_media_ingest\{kind="relay"\} 1/);

    // The broadcaster connects to B itself: B stops pulling and feeds its stage from it.
    const switchFrom = rx()!.video.length;
    const direct = await broadcast(msB, 3);
    broadcasters.push(direct);
    await waitFor(() => msB.stats().ingest === 'broadcaster' && msB.stats().relay?.pull.state === 'idle', { timeoutMs: 10_000, what: 'B fed by its own broadcaster, no pull' });
    await waitFor(() => msC.stats().relay?.sinks.active === 0, { timeoutMs: 5000, what: "C's relay session ended" });
    const n = rx()!.video.length;
    await waitFor(() => rx()!.video.length > n + 30, { timeoutMs: 10_000, what: 'video from the direct broadcaster' });
    // Make-before-break: the relay fed the stage until the broadcaster's first packet.
    const around = rx()!.video.slice(switchFrom);
    let maxGapMs = 0;
    for (let i = 1; i < around.length; i++) maxGapMs = Math.max(maxGapMs, around[i]!.at - around[i - 1]!.at);
    t.diagnostic(`longest gap at the stage when the broadcaster came to the puller: ${maxGapMs} ms`);
    assert.ok(maxGapMs < 300, `no freeze when the relay hands over to the direct broadcaster (${maxGapMs} ms)`);
  } catch (err) {
    console.log(logs.text.split('\n').slice(-120).join('\n'));
    throw err;
  } finally {
    for (const x of broadcasters) await x.stop().catch(() => undefined);
    for (const s of servers) await s.stop();
    await api.stop();
    await stages.close();
  }
});

test('relay endpoint: 401 without the Media Server secret or with a wrong one; an unreachable origin is retried with backoff', { timeout: 30_000 }, async () => {
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 200 });
  api.pool = true;
  const { log } = testLogger('info');
  const S = localStageArn('orphan');
  let ms: MediaServer | undefined;
  try {
    ms = await mediaServer(api, 'ms-lone', log);
    const url = `http://127.0.0.1:${ms.port}${MEDIA_ROUTES.relay}`;
    const none = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    const wrong = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: 'Bearer not-the-secret-at-all' }, body: 'v=0\r\n' });
    assert.equal(wrong.status, 401);
    const bad = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${SECRET}` }, body: 'not sdp' });
    assert.equal(bad.status, 400, 'with the secret, a bad offer is the client’s error');
    assert.equal(ms.stats().relay?.sinks.refused, 2);

    // A stage, an origin that does not answer: the pull fails and is retried, never a crash, never a storm.
    api.stages.add(S);
    api.assign(S, 'ms-lone');
    api.setOrigin({ serverId: 'ms-gone' as Origin['serverId'], url: 'http://127.0.0.1:9' });
    await waitFor(() => (ms!.stats().relay?.pull.reconnects ?? 0) >= 2, { timeoutMs: 10_000, what: 'retries' });
    const p = ms.stats().relay!.pull;
    assert.notEqual(p.state, 'pulling');
    assert.ok(p.failures >= 2 && p.failures < 30, `failures ${p.failures}`);
    assert.equal(ms.stats().ingest, 'none');
  } finally {
    await ms?.stop();
    await api.stop();
  }
});
