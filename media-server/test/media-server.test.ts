/** The whole Media Server in this process (real Fastify on 127.0.0.1:0, real Router), with the transport faked. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { MediaServerStatsSchema, localStageArn } from '@stagecast/protocol';
import type { HttpRequest, HttpResponse } from '@stagecast/rtc';
import { SyntheticPublisher } from '@stagecast/rtc/testing';
import { parseConfig } from '../src/config.js';
import type { IngestEndpoint, IngestEndpointOptions } from '../src/media/ports.js';
import { createMediaServer, type MediaServer } from '../src/system.js';
import { bodyOf, oversizedHeaderRequest, rawRequest } from '../../packages/service/test/raw-http.js';
import { startFakeApi, type FakeApi } from './helpers/fake-api.js';
import { FakeIngestSession, fakeConnector, type FakeConnector } from './helpers/fakes.js';
import { testLogger, type LogCapture } from './helpers/log.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'media-secret-0123456789';
const INGEST_TOKEN = 'obs-long-lived-token-0123456789';

/** A WhipEndpoint stand-in: POST makes a session (handed over before the 201), DELETE ends it. */
class FakeEndpoint implements IngestEndpoint {
  sessions = new Map<string, FakeIngestSession>();
  posts = 0;
  constructor(private readonly o: IngestEndpointOptions) {}
  checkOffer(req: HttpRequest): HttpResponse | undefined {
    return req.body.toString().startsWith('v=0') ? undefined : { status: 400, headers: {}, body: '{"error":{"code":"INVALID_INPUT","message":"bad SDP offer"}}' };
  }
  async handle(req: HttpRequest): Promise<HttpResponse> {
    const path = req.url.split('?')[0]!;
    if (req.method === 'POST' && path === '/whip') {
      this.posts++;
      if (!req.body.toString().startsWith('v=0')) return { status: 400, headers: {} };
      const s = new FakeIngestSession();
      this.sessions.set(s.id, s);
      s.on('closed', () => this.sessions.delete(s.id));
      this.o.onSession(s);
      return { status: 201, headers: { location: `${this.o.endpointUrl()}/sessions/${s.id}`, 'content-type': 'application/sdp' }, body: 'v=0\r\n' };
    }
    const s = this.sessions.get(path.slice('/whip/sessions/'.length));
    if (req.method === 'DELETE' && s) {
      s.close('deleted');
      return { status: 200, headers: {} };
    }
    if (req.method === 'OPTIONS') return { status: 204, headers: { 'accept-post': 'application/sdp' } };
    return { status: 404, headers: {} };
  }
  close(): void {
    for (const s of [...this.sessions.values()]) s.close('endpoint closed');
  }
}

interface Rig {
  ms: MediaServer;
  api: FakeApi;
  conn: FakeConnector;
  endpoint: () => FakeEndpoint;
  url: string;
  logs: LogCapture;
  jwt: (claims?: Record<string, unknown>) => Promise<string>;
}

async function withServer(fn: (r: Rig) => Promise<void>, before?: (api: FakeApi) => void): Promise<void> {
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 100 });
  before?.(api);
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES384' };
  const jwt = (claims: Record<string, unknown> = {}) =>
    new SignJWT({
      jti: `ingest_${Math.random().toString(36).slice(2)}`,
      resource: 'stagecast:ingest',
      topic: 'ingest',
      whip_url: 'http://127.0.0.1/whip',
      capabilities: { allow_publish: true, allow_subscribe: false },
      version: '1.0',
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES384', kid: 'k1' })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(privateKey);
  const { log, logs } = testLogger('info');
  const conn = fakeConnector();
  let ep: FakeEndpoint | undefined;
  const config = parseConfig({ PORT: '0', HOST: '127.0.0.1', MEDIA_SERVER_SECRET: SECRET, API_SERVER_URL: api.url, INGEST_TOKEN, SERVER_ID: 'ms-test' });
  const ms = await createMediaServer(config, log, {
    connect: conn.connect,
    ingestEndpoint: (o) => (ep = new FakeEndpoint(o)),
    jwksKeys: createLocalJWKSet({ keys: [jwk] }),
    backoff: { baseMs: 20, capMs: 100 },
  });
  try {
    await ms.start();
    await fn({ ms, api, conn, endpoint: () => ep!, url: `http://127.0.0.1:${ms.port}`, logs, jwt });
  } finally {
    await ms.stop();
    await api.stop();
  }
}

const post = (url: string, token?: string) =>
  fetch(`${url}/whip`, { method: 'POST', headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: 'v=0\r\n' });

test('start-up follows the seed: listen, register, WebSocket, a leg per existing stage before any broadcaster; /ready turns 200 when registered', async () => {
  await withServer(async ({ ms, api, conn, url, logs }) => {
    const arn = localStageArn('early');
    api.stages.add(arn);
    await ms.stageManager.syncAllStages();
    await waitFor(() => ms.stageManager.legFor(arn)?.state === 'connected', { what: 'the leg' });
    assert.equal(conn.calls.length, 1);
    await waitFor(() => api.wsConnections === 1, { what: 'WebSocket' });
    const h = await fetch(`${url}/ready`);
    assert.equal(h.status, 200);
    const body = (await h.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    assert.equal(body.status, 'ok');
    assert.equal(body.checks.registration!.ok, true);
    assert.equal((await fetch(`${url}/health`)).status, 200);
    assert.equal(api.servers.get('ms-test')?.port, ms.port, 'registered with the real port');
    await waitFor(() => api.wsConnections === 1, { what: 'WebSocket' });
    const order = logs.lines().map((l) => l.msg).filter((m) => ['server.listening', 'registered', 'stages.synced'].includes(m as string));
    assert.deepEqual(order.slice(0, 3), ['server.listening', 'registered', 'stages.synced']);
    // Heartbeats tell the API Server about the leg.
    await waitFor(() => JSON.stringify(api.servers.get('ms-test')?.legs ?? []).includes('"connected"'), { what: 'leg in heartbeat' });
  });
});

test('a stage created while the WebSocket is still opening (after the start-up sync) gets its leg at once, not at the next 60 s sync', async () => {
  let release!: () => void;
  await withServer(
    async ({ ms, api, conn }) => {
      // start() has registered and synced (no stages yet); the socket is still opening.
      assert.equal(ms.api.websocketState, 'connecting');
      const late = localStageArn('late');
      api.createStage(late); // its stage_created event reaches no one
      release();
      await waitFor(() => ms.stageManager.legFor(late)?.state === 'connected', { timeoutMs: 3000, what: 'a leg for the stage created before the socket opened' });
      assert.equal(conn.live(late).length, 1);
    },
    (api) => (release = api.holdUpgrades()),
  );
});

test('every refusal has the one error shape: unknown route, over-long path parameter, malformed URL, body too large, header fields too large', async () => {
  await withServer(async ({ url, ms }) => {
    const err = async (r: Response) => ({ status: r.status, code: ((await r.json()) as { error: { code: string } }).error.code });
    assert.deepEqual(await err(await fetch(`${url}/nowhere`)), { status: 404, code: 'NOT_FOUND' });
    assert.deepEqual(await err(await fetch(`${url}/whip/sessions/${'a'.repeat(300)}`, { method: 'DELETE' })), { status: 414, code: 'URI_TOO_LONG' });
    assert.deepEqual(await err(await fetch(`${url}/whip/sessions/%E0%A4%A`, { method: 'DELETE' })), { status: 400, code: 'INVALID_INPUT' });
    const big = await fetch(`${url}/whip`, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${INGEST_TOKEN}` }, body: 'v=0\r\n' + 'a=x\r\n'.repeat(20_000) });
    assert.deepEqual(await err(big), { status: 413, code: 'PAYLOAD_TOO_LARGE' });
    const raw = await rawRequest(ms.port, oversizedHeaderRequest());
    assert.match(raw, /^HTTP\/1\.1 431 /);
    assert.deepEqual(bodyOf(raw), { error: { code: 'HEADERS_TOO_LARGE', message: 'request header fields too large' } });
  });
});

test('WHIP ingest: 401 without or with a bad token; INGEST_TOKEN and an API Server JWT are accepted; one broadcaster at a time (409); the same token replaces the live session', async () => {
  await withServer(async ({ ms, url, endpoint, jwt }) => {
    const none = await post(url);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await post(url, 'nope-not-a-token')).status, 401);
    assert.equal((await post(url, await jwt({ resource: 'arn:x' }))).status, 403);
    assert.equal(endpoint().posts, 0, 'refused before reaching the endpoint');

    const first = await post(url, INGEST_TOKEN);
    assert.equal(first.status, 201);
    const malformed = await fetch(`${url}/whip`, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${await jwt()}` }, body: 'not sdp' });
    assert.equal(malformed.status, 400, 'a malformed offer is a 400 even while another broadcaster is live (not 409)');
    const loc1 = first.headers.get('location')!;
    assert.match(loc1, /^http:\/\/127\.0\.0\.1:\d+\/whip\/sessions\//);
    assert.equal(ms.stageManager.publisherOnline, true);
    assert.equal(ms.router.hasSource, true);

    const other = await post(url, await jwt());
    assert.equal(other.status, 409);
    assert.equal(((await other.json()) as { error: { code: string } }).error.code, 'CONFLICT');

    // OBS reconnects with a new POST and the same token: the new session replaces the old one, make-before-break —
    // the old one stays the router's source until the new one's first packet.
    const oldSession = [...endpoint().sessions.values()][0]!;
    const again = await post(url, INGEST_TOKEN);
    assert.equal(again.status, 201);
    assert.notEqual(again.headers.get('location'), loc1);
    assert.equal(endpoint().sessions.size, 2, 'the old session lives until the new one delivers');
    assert.equal(oldSession.closed, false);
    assert.equal(ms.stageManager.publisherOnline, true);
    const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 1, audioSeq: 1, videoTs: 0, audioTs: 0, packetsPerFrame: 2, payloadBytes: 200 });
    const before = ms.router.sourceStats().packetsReceived;
    const frame = pub.videoFrame(true);
    for (const p of frame) oldSession.deliver('video', p);
    assert.equal(ms.router.sourceStats().packetsReceived, before + frame.length, 'the old session still feeds the router');
    const newSession = [...endpoint().sessions.values()].find((x) => x !== oldSession)!;
    newSession.deliver('audio', pub.audioPacket());
    assert.equal(oldSession.closed, true, 'closed at the new session’s first packet');
    assert.equal(endpoint().sessions.size, 1);
    assert.equal(ms.ingest.stats().replacements, 1);
    assert.equal(ms.router.sourceStats().packetsReceived, before + frame.length + 1, 'that first packet reached the router');
    assert.equal(ms.stageManager.publisherOnline, true);

    // DELETE ends it; then anyone with a valid token may publish.
    const del = await fetch(again.headers.get('location')!, { method: 'DELETE', headers: { authorization: `Bearer ${INGEST_TOKEN}` } });
    assert.equal(del.status, 200);
    assert.equal(ms.stageManager.publisherOnline, false);
    assert.equal((await post(url, await jwt())).status, 201);
    const opts = await fetch(`${url}/whip`, { method: 'OPTIONS' });
    assert.equal(opts.status, 204);
  });
});

test('a same-token replacement that dies before it delivers anything leaves the old session live and feeding', async () => {
  await withServer(async ({ ms, url, endpoint }) => {
    assert.equal((await post(url, INGEST_TOKEN)).status, 201);
    const oldSession = [...endpoint().sessions.values()][0]!;
    assert.equal((await post(url, INGEST_TOKEN)).status, 201);
    const newSession = [...endpoint().sessions.values()].find((x) => x !== oldSession)!;
    newSession.close('ICE failed');
    assert.equal(oldSession.closed, false);
    assert.equal(ms.ingest.stats().live, true);
    assert.equal(ms.ingest.stats().sessionId, oldSession.id);
    assert.equal(ms.stageManager.publisherOnline, true);
    const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 1, audioSeq: 1, videoTs: 0, audioTs: 0, packetsPerFrame: 2, payloadBytes: 200 });
    const before = ms.router.sourceStats().packetsReceived;
    const frame = pub.videoFrame(true);
    for (const p of frame) oldSession.deliver('video', p);
    assert.equal(ms.router.sourceStats().packetsReceived, before + frame.length);
    assert.equal(ms.ingest.stats().replacements, 0);
    // And if the old one dies while a replacement is pending, the broadcaster is offline until the new one delivers.
    assert.equal((await post(url, INGEST_TOKEN)).status, 201);
    const third = [...endpoint().sessions.values()].find((x) => x !== oldSession)!;
    oldSession.close('consent lost');
    assert.equal(ms.stageManager.publisherOnline, false);
    third.deliver('audio', pub.audioPacket());
    assert.equal(ms.stageManager.publisherOnline, true);
    assert.equal(ms.ingest.stats().sessionId, third.id);
  });
});

test('GET / reports the broadcaster, the H.264 stream read from the bitstream and every leg; /metrics exports them', async () => {
  await withServer(async ({ ms, api, url, endpoint, conn }) => {
    const arn = localStageArn('s1');
    api.createStage(arn);
    await waitFor(() => ms.stageManager.legFor(arn)?.state === 'connected', { timeoutMs: 5000, what: 'leg from stage_created' });
    assert.equal((await post(url, INGEST_TOKEN)).status, 201);
    const session = [...endpoint().sessions.values()][0]!;
    const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 10, audioSeq: 20, videoTs: 0, audioTs: 0, packetsPerFrame: 2, payloadBytes: 300 });
    for (let f = 0; f < 40; f++) for (const p of pub.videoFrame(f % 30 === 0)) session.deliver('video', p);
    const stats = MediaServerStatsSchema.parse(await (await fetch(url)).json());
    assert.equal(stats.publisher.online, true);
    assert.ok(stats.publisher.packetsReceived >= 80);
    assert.equal(stats.stages.expected, 1);
    assert.equal(stats.stages.connected, 1);
    assert.equal(stats.legs[0]!.state, 'connected');
    assert.ok(stats.legs[0]!.packetsSent >= 80);
    assert.equal(stats.legs[0]!.rttMs, 12);
    assert.equal(stats.stream?.width, 640);
    assert.equal(stats.stream?.height, 480);
    assert.equal(stats.stream?.bFrames, false);
    assert.match(stats.stream?.profile ?? '', /Baseline/);
    assert.equal(stats.api.registered, true);
    assert.equal(conn.live(arn)[0]!.sinkPort.of('video').length, stats.legs[0]!.packetsSent);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /stagecast_media_publisher_online 1/);
    assert.match(metrics, /stagecast_media_stages_connected 1/);
    assert.match(metrics, /stagecast_media_leg_packets_sent_total\{stage="s1"\} \d+/);
  });
});

test('graceful stop DELETEs every leg, ends the broadcaster session, sends a last heartbeat with no legs and closes the WebSocket', async () => {
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 100 });
  const conn = fakeConnector();
  let ep: FakeEndpoint | undefined;
  const { log } = testLogger('info');
  const config = parseConfig({ PORT: '0', HOST: '127.0.0.1', MEDIA_SERVER_SECRET: SECRET, API_SERVER_URL: api.url, INGEST_TOKEN, SERVER_ID: 'ms-stop' });
  const ms = await createMediaServer(config, log, { connect: conn.connect, ingestEndpoint: (o) => (ep = new FakeEndpoint(o)), backoff: { baseMs: 20, capMs: 100 } });
  try {
    await ms.start();
    api.createStage(localStageArn('a'));
    api.createStage(localStageArn('b'));
    await waitFor(() => ms.stageManager.stats().stagesConnected === 2, { what: 'legs' });
    await waitFor(() => api.openSockets() === 1, { what: 'socket' });
    assert.equal((await post(`http://127.0.0.1:${ms.port}`, INGEST_TOKEN)).status, 201);
    await waitFor(() => (api.servers.get('ms-stop')?.legs.length ?? 0) === 2, { what: 'legs in a heartbeat' });
    await ms.stop();
    assert.ok(conn.conns.every((c) => c.stopped), 'every leg DELETEd');
    assert.equal(ep!.sessions.size, 0);
    const rec = api.servers.get('ms-stop')!;
    assert.deepEqual(rec.legs, []);
    assert.equal(rec.publisherOnline, false);
    await waitFor(() => api.openSockets() === 0, { what: 'WebSocket closed' });
  } finally {
    await ms.stop();
    await api.stop();
  }
});
