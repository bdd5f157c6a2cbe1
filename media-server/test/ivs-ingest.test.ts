/**
 * IVS rules through a real Media Server, real WebRTC (node-datachannel on loopback): the API Server stand-in lists
 * an IVS stage (arn:aws:…) whose WHIP URL is a chain of 307 redirects over three origins, each checking the
 * Bearer token, ending at a WHIP endpoint standing in for the stage, which reads the H.264 it receives.
 * A conforming broadcaster reaches the stage; one sending B-frames, then one sending High profile, are cut
 * before a single offending packet reaches the stage, told why with a 422 on their reconnect, and the stage's
 * leg never moves. An offer naming only High profile is refused at POST.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import type { StageArn } from '@stagecast/protocol';
import {
  analyzeH264Payload,
  H264PayloadInfo,
  h264SliceType,
  NAL_SPS,
  parseH264Sps,
  parseRtpHeader,
  RtpInfo,
  shutdownRtc,
  SLICE_B,
  WhipEndpoint,
  WHIPClient,
  WhipHttpError,
  toNodeHttp,
} from '@stagecast/rtc';
import { CraftedH264Stream, SPS_CB_640x480_CRAFTED, SPS_HIGH_640x480, type SliceKind } from '../../e2e/helpers/h264.js';
import { startRedirectChain } from '../../e2e/helpers/redirect-chain.js';
import { parseConfig } from '../src/config.js';
import { createMediaServer } from '../src/system.js';
import { startFakeApi } from './helpers/fake-api.js';
import { testLogger } from './helpers/log.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'media-secret-0123456789';
const INGEST_TOKEN = 'obs-long-lived-token-0123456789';
const STAGE_ID = 'ivsStage1';
const IVS_ARN = `arn:aws:ivs:us-east-1:123456789012:stage/${STAGE_ID}` as StageArn;

after(() => shutdownRtc());

/** What the stand-in stage read from the H.264 it received. */
interface StageSeen {
  sessions: number;
  closed: number;
  video: number;
  profiles: Set<string>;
  bSlices: number;
}

async function startStage() {
  const seen: StageSeen = { sessions: 0, closed: 0, video: 0, profiles: new Set(), bSlices: 0 };
  let base = '';
  const info = new RtpInfo();
  const h = new H264PayloadInfo();
  const endpoint = new WhipEndpoint({
    basePath: `/stages/${STAGE_ID}/whip`,
    endpointUrl: () => `${base}/stages/${STAGE_ID}/whip`,
    maxSessions: 4,
    bindAddress: '127.0.0.1',
    authorize: (t) => (t?.startsWith(`tok-${STAGE_ID}-`) ? { ok: true } : { ok: false, status: 403 }),
    onSession: (session) => {
      seen.sessions++;
      session.on('closed', () => seen.closed++);
      session.onRtp((kind, p) => {
        if (kind !== 'video' || !parseRtpHeader(p, p.length, info)) return;
        seen.video++;
        if (!analyzeH264Payload(p, info.payloadOffset, info.payloadLength, h)) return;
        if (h.spsOffset >= 0 && h.nalMask & (1 << NAL_SPS)) {
          const sps = parseH264Sps(p, h.spsOffset, h.spsEnd);
          if (sps) seen.profiles.add(sps.profileName);
        }
        if (h.sliceOffset >= 0 && h264SliceType(p, h.sliceOffset, h.sliceEnd) === SLICE_B) seen.bSlices++;
      });
    },
  });
  const server = createServer(toNodeHttp(endpoint));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    seen,
    async close() {
      endpoint.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('IVS stage behind a 307 chain: a conforming broadcast arrives; B-frames and High profile are cut before the stage, the reconnect gets 422, the leg stays; a High-only offer gets 422 at POST', { timeout: 90_000 }, async (t) => {
  const stage = await startStage();
  const chain = await startRedirectChain({
    hosts: ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
    target: (path) => (path === `/stages/${STAGE_ID}/whip` ? `${stage.base}${path}` : undefined),
    acceptToken: (tok) => /^tok-ivsStage1-\d+$/.test(tok),
  });
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 200, whipBase: chain.base });
  api.stages.add(IVS_ARN);
  const { log, logs } = testLogger('info');
  const config = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    MEDIA_SERVER_SECRET: SECRET,
    API_SERVER_URL: api.url,
    INGEST_TOKEN,
    RTC_BIND_ADDRESS: '127.0.0.1',
    SERVER_ID: 'ms-ivs',
    IVS_REFUSAL_HOLD_S: '2',
  });
  const ms = await createMediaServer(config, log, { backoff: { baseMs: 50, capMs: 500 } });
  const clients: WHIPClient[] = [];
  let pump: NodeJS.Timeout | undefined;
  const whip = () => `http://127.0.0.1:${ms.port}/whip`;

  /** A broadcaster (OBS-shaped offer: 42e01f, no candidates) sending crafted H.264 at 30 fps. */
  const broadcast = async (sps: Uint8Array, pattern: SliceKind[], seed: number) => {
    const c = new WHIPClient({ url: whip(), token: INGEST_TOKEN, bindAddress: '127.0.0.1', id: `bc${seed}`, audio: false });
    clients.push(c);
    await c.start();
    assert.ok(await c.connected(10_000), 'broadcaster connected');
    const v = c.sinkPort.video!;
    const s = new CraftedH264Stream({ ssrc: v.ssrc, payloadType: v.payloadType, sps, seq: seed * 1000, ts: seed * 90_000 });
    let n = 0;
    clearInterval(pump);
    pump = setInterval(() => {
      for (const p of s.frame(pattern[n++ % pattern.length]!)) c.sinkPort.sendRtp('video', p);
    }, 33);
    return c;
  };
  const stopPump = () => clearInterval(pump);
  const metrics = async () => (await fetch(`http://127.0.0.1:${ms.port}/metrics`)).text();

  try {
    await ms.start();
    const leg = await waitFor(() => (ms.stageManager.legFor(IVS_ARN)?.state === 'connected' ? ms.stageManager.legFor(IVS_ARN) : undefined), { timeoutMs: 15_000, what: 'leg into the IVS stage through the redirect chain' });
    const posts = chain.hits.filter((h) => h.method === 'POST');
    assert.deepEqual(posts.map((h) => [h.hop, h.status]), [[0, 307], [1, 307], [2, 307]], 'one POST per hop, each with the token, each redirected');
    assert.ok(posts.every((h) => h.bodyBytes > 100), 'the SDP offer was re-sent at every hop');
    assert.equal((await fetch(`${chain.base}/stages/${STAGE_ID}/whip`, { method: 'POST', body: 'x' })).status, 401, 'the chain refuses a POST without the token');
    assert.equal(ms.stats().ivs?.enforcing, true, 'IVS_RULES=auto enforces: the stage is IVS');

    // 1. A conforming broadcast (Constrained Baseline, I/P) reaches the IVS stage.
    const good = await broadcast(SPS_CB_640x480_CRAFTED, ['I', ...Array<SliceKind>(29).fill('P')], 1);
    await waitFor(() => stage.seen.video > 60, { timeoutMs: 10_000, what: 'conforming video at the stage' });
    stopPump();
    await good.stop();
    await waitFor(() => !ms.stageManager.publisherOnline, { what: 'publisher offline' });

    // 2. B-frames: the session is ended at the first B slice; not one B slice reaches the stage.
    const videoBefore = stage.seen.video;
    await broadcast(SPS_CB_640x480_CRAFTED, ['I', 'P', 'B', 'B', 'P', 'B', 'B'], 2);
    const refused = await waitFor(() => logs.lines().find((l) => l.msg === 'ingest.refused'), { timeoutMs: 10_000, what: 'ingest.refused' });
    stopPump();
    assert.deepEqual(refused.codes, ['B_FRAMES']);
    await waitFor(() => !ms.stageManager.publisherOnline, { what: 'refused publisher offline' });
    assert.equal(stage.seen.bSlices, 0, 'no B slice reached the stage');
    t.diagnostic(`packets of the B-frame stream forwarded before its first B slice: ${stage.seen.video - videoBefore}`);

    // OBS reconnects at once: the same token is told why, with a 422 and Retry-After.
    const again = await new WHIPClient({ url: whip(), token: INGEST_TOKEN, bindAddress: '127.0.0.1', audio: false }).start().then(
      () => assert.fail('the reconnect was admitted'),
      (e: unknown) => e,
    );
    assert.ok(again instanceof WhipHttpError, `${String(again)} ${String((again as Error).cause)}`);
    assert.equal(again.status, 422);
    const body = JSON.parse(again.body) as { error: { code: string; message: string; details: { violations: { code: string }[] } } };
    assert.equal(body.error.code, 'UNPROCESSABLE');
    assert.match(body.error.message, /Amazon IVS.*B-frames to 0/s);
    assert.deepEqual(body.error.details.violations.map((v) => v.code), ['B_FRAMES']);

    // The leg never moved.
    assert.equal(ms.stageManager.legFor(IVS_ARN), leg, 'same leg');
    assert.equal(leg.state, 'connected');
    assert.equal(stage.seen.sessions, 1, 'no new WHIP session at the stage');
    assert.equal(stage.seen.closed, 0);

    // Stats and metrics tell the operator.
    const st = (await (await fetch(`http://127.0.0.1:${ms.port}/`)).json()) as { ivs: { refusals: number; refusalsByCode: Record<string, number>; refusedReconnects: number; lastRefusal: { codes: string[]; message: string } } };
    assert.deepEqual(st.ivs.refusalsByCode, { B_FRAMES: 1 });
    assert.equal(st.ivs.refusedReconnects, 1);
    assert.match(st.ivs.lastRefusal.message, /B-frames/);
    assert.match(await metrics(), /stagecast_media_ivs_refusals_total\{code="B_FRAMES"\} 1/);

    // 3. After the hold, the same token may try again: High profile is cut on its SPS, nothing of it reaches the stage.
    await waitFor(() => Date.parse(ms.stats().ivs?.lastRefusal?.until ?? '') < Date.now(), { timeoutMs: 5000, what: 'the refusal hold to end' });
    const profilesBefore = [...stage.seen.profiles];
    await broadcast(SPS_HIGH_640x480, ['I', 'P', 'P', 'P'], 3);
    await waitFor(() => logs.lines().filter((l) => l.msg === 'ingest.refused').length === 2, { timeoutMs: 10_000, what: 'second ingest.refused' });
    stopPump();
    assert.deepEqual(logs.lines().filter((l) => l.msg === 'ingest.refused')[1]!.codes, ['PROFILE_NOT_BASELINE']);
    assert.deepEqual([...stage.seen.profiles], profilesBefore, 'no High-profile SPS reached the stage');
    assert.deepEqual(profilesBefore, ['Constrained Baseline']);

    // 4. An offer naming only High profile is refused at POST, before any session exists (after the hold).
    await waitFor(() => Date.parse(ms.stats().ivs?.lastRefusal?.until ?? '') < Date.now(), { timeoutMs: 5000, what: 'the second hold to end' });
    const sessionsBefore = ms.ingest.stats().sessions;
    const highOffer = [
      'v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0', 'a=fingerprint:sha-256 AA:BB:CC', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuv',
      'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly', 'a=rtcp-mux', 'a=setup:actpass',
      'a=rtpmap:96 H264/90000', 'a=fmtp:96 profile-level-id=640c1f;packetization-mode=1', '',
    ].join('\r\n');
    const r = await fetch(whip(), { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${INGEST_TOKEN}` }, body: highOffer });
    assert.equal(r.status, 422);
    const rb = (await r.json()) as { error: { code: string; details: { violations: { code: string }[] } } };
    assert.equal(rb.error.code, 'UNPROCESSABLE');
    assert.deepEqual(rb.error.details.violations.map((v) => v.code), ['PROFILE_NOT_BASELINE']);
    assert.equal(ms.ingest.stats().sessions, sessionsBefore, 'no session was created');
    assert.equal(leg.state, 'connected');
    assert.equal(stage.seen.bSlices, 0);
  } catch (err) {
    console.log(logs.text.slice(-6000));
    throw err;
  } finally {
    stopPump();
    for (const c of clients) await c.stop();
    await ms.stop();
    await api.stop();
    await chain.close();
    await stage.close();
  }
});
