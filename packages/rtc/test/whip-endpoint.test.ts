/** RFC 9725 server behaviour of WhipEndpoint, point by point, with real node-datachannel peers on 127.0.0.1. */
import assert from 'node:assert/strict';
import { shutdownRtc } from '../src/transport/peer.js';
import { after, before, describe, test } from 'node:test';
import { WhipEndpoint, type WhipSession } from '../src/transport/index.js';
import { parseSdp } from '../src/transport/sdp.js';
import { ObsLikePublisher } from './helpers/obs.js';
import { serve, waitFor, type Served } from './helpers/serve.js';

const TOKEN = 'publish-token-123';

describe('WhipEndpoint (RFC 9725)', () => {
  let srv: Served;
  let endpoint: WhipEndpoint;
  const sessions: WhipSession[] = [];
  let base = '';

  before(async () => {
    srv = await serve((req) => endpoint.handle(req));
    base = `${srv.url}/whip`;
    endpoint = new WhipEndpoint({
      endpointUrl: () => base,
      basePath: '/whip',
      maxSessions: 2,
      bindAddress: '127.0.0.1',
      iceServers: [{ urls: 'stun:127.0.0.1:3478' }, { urls: 'turn:127.0.0.1:3478?transport=udp', username: 'u', credential: 'p' }],
      authorize: (t) => (t === undefined ? { ok: false, status: 401 } : t === TOKEN ? { ok: true } : { ok: false, status: 403 }),
      onSession: (s) => sessions.push(s),
    });
  });
  after(async () => {
    endpoint.close();
    await srv.close();
  });

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(base, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${TOKEN}`, ...headers }, body });

  test('an OBS-shaped offer (no candidates, 42e01f, DELETE on stop) gets 201 + Location + ETag + a full answer, and its media arrives', async () => {
    const obs = new ObsLikePublisher();
    try {
      const res = await obs.publish(base, TOKEN);
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('content-type'), 'application/sdp');
      const loc = res.headers.get('location')!;
      assert.match(loc, /^http:\/\/127\.0\.0\.1:\d+\/whip\/sessions\/[A-Za-z0-9_-]{24}$/, 'absolute session URL with 144 random bits');
      assert.match(res.headers.get('etag')!, /^"[A-Za-z0-9_-]+"$/, 'strong, quoted entity-tag');
      const answer = parseSdp(await res.text());
      assert.ok(answer.media.every((m) => m.direction === 'recvonly'));
      assert.ok(answer.media[0]!.candidates.length > 0, 'the answer already holds the candidates');
      assert.match(await (await fetch(loc, { method: 'GET' })).text(), /^$/);
      const session = sessions.at(-1)!;
      assert.equal(session.params.video?.payloadType, 96);
      assert.equal(session.params.video?.ssrc, 0x0b5);
      assert.equal(session.params.audio?.payloadType, 111);
      let video = 0;
      let audio = 0;
      session.onRtp((kind) => (kind === 'video' ? video++ : audio++));
      assert.ok(await obs.peer.connected(), 'ICE connects through the peer-reflexive candidate');
      obs.startMedia();
      await waitFor(() => video > 20 && audio > 5, 'media at the session');
      await obs.stop(TOKEN);
      await waitFor(() => session.closed, 'DELETE closes the session');
      assert.equal(endpoint.sessionCount, 0);
    } finally {
      await obs.stop();
    }
  });

  test('session URLs are unique and unguessable', async () => {
    const a = new ObsLikePublisher();
    const b = new ObsLikePublisher();
    try {
      const [ra, rb] = [await a.publish(base, TOKEN), await b.publish(base, TOKEN)];
      assert.notEqual(ra.headers.get('location'), rb.headers.get('location'));
      assert.notEqual(ra.headers.get('etag'), rb.headers.get('etag'));
      const guess = ra.headers.get('location')!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      assert.equal((await fetch(guess, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    } finally {
      await a.stop(TOKEN);
      await b.stop(TOKEN);
    }
    await waitFor(() => endpoint.sessionCount === 0, 'sessions freed');
  });

  test('503 with Retry-After when full, but a malformed offer still gets 400; a DELETE frees the room for the next POST', async () => {
    const pubs = [new ObsLikePublisher(), new ObsLikePublisher(), new ObsLikePublisher()];
    try {
      assert.equal((await pubs[0]!.publish(base, TOKEN)).status, 201);
      assert.equal((await pubs[1]!.publish(base, TOKEN)).status, 201);
      const full = await pubs[2]!.publish(base, TOKEN);
      assert.equal(full.status, 503);
      assert.equal(full.headers.get('retry-after'), '5');
      assert.equal(((await full.json()) as { error: { code: string } }).error.code, 'CAPACITY_EXCEEDED');
      // Judged before the limit: a malformed offer is the client's error, full or not.
      const bad = await post('v=0\r\nnot sdp');
      assert.equal(bad.status, 400, 'a malformed offer gets 400, never 503');
      assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'INVALID_INPUT');
      assert.equal((await post('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n')).status, 400, 'no ICE/DTLS parameters: 400, not 503');
      await pubs[0]!.stop(TOKEN);
      const next = new ObsLikePublisher();
      pubs.push(next);
      assert.equal((await next.publish(base, TOKEN)).status, 201);
    } finally {
      for (const p of pubs) await p.stop(TOKEN);
    }
    await waitFor(() => endpoint.sessionCount === 0, 'sessions freed');
  });

  test('refusals: 401 + WWW-Authenticate without a token, 403 with a wrong one, 415 wrong type, 400 bad SDP', async () => {
    const offer = await new ObsLikePublisher().offer();
    const noAuth = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
    assert.equal(noAuth.status, 401);
    assert.equal(noAuth.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await post(offer, { authorization: 'Bearer nope' })).status, 403);
    const wrongType = await post(offer, { 'content-type': 'application/json' });
    assert.equal(wrongType.status, 415);
    assert.equal(wrongType.headers.get('accept-post'), 'application/sdp');
    for (const bad of ['', 'hello', 'v=0\r\nm=video x UDP 96\r\n', 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96\r\n']) {
      const r = await post(bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'INVALID_INPUT');
    }
    assert.equal(endpoint.sessionCount, 0);
  });

  test('422 for two video tracks, a video codec other than H.264, audio other than Opus, simulcast, or a recvonly offer', async () => {
    const offer = await new ObsLikePublisher().offer();
    const video = offer.slice(offer.indexOf('m=video'), offer.indexOf('m=audio'));
    const twoVideo = offer.replace('m=audio', video.replace('a=mid:0', 'a=mid:2') + 'm=audio');
    const vp8 = offer.replace(/H264\/90000/, 'VP8/90000');
    const pcmu = offer.replace(/opus\/48000\/2/, 'PCMU/8000');
    const simulcast = offer.replace('a=mid:0\r\n', 'a=mid:0\r\na=rid:h send\r\na=rid:l send\r\na=simulcast:send h;l\r\n');
    const recvonly = offer.replace(/a=sendonly/g, 'a=recvonly');
    for (const [name, sdp] of Object.entries({ twoVideo, vp8, pcmu, simulcast, recvonly })) {
      const r = await post(sdp);
      assert.equal(r.status, 422, name);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'UNPROCESSABLE', name);
    }
    assert.equal(endpoint.sessionCount, 0);
  });

  test('PATCH: 428 without If-Match, 412 on a wrong ETag, 415 wrong type, 204 trickle (no ETag), 422 ICE restart keeps the session', async () => {
    const obs = new ObsLikePublisher();
    try {
      const res = await obs.publish(base, TOKEN);
      const loc = res.headers.get('location')!;
      const etag = res.headers.get('etag')!;
      const frag = 'a=ice-ufrag:' + /a=ice-ufrag:(\S+)/.exec(await obs.offer().catch(() => obs.peer.localSdp()))![1] + '\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 UDP 2122260223 127.0.0.1 50000 typ host\r\na=candidate:2 1 UDP 2122260223 abc.local 50001 typ host\r\n';
      const patch = (h: Record<string, string>, body = frag) =>
        fetch(loc, { method: 'PATCH', headers: { 'content-type': 'application/trickle-ice-sdpfrag', authorization: `Bearer ${TOKEN}`, ...h }, body });
      assert.equal((await patch({})).status, 428);
      assert.equal((await patch({ 'if-match': '"nope"' })).status, 412);
      assert.equal((await patch({ 'if-match': etag, 'content-type': 'application/sdp' })).status, 415);
      assert.equal((await patch({ 'if-match': etag }, 'garbage line')).status, 400);
      const trickle = await patch({ 'if-match': etag });
      assert.equal(trickle.status, 204);
      assert.equal(trickle.headers.get('etag'), null, 'a trickle answer carries no ETag');
      const restart = await patch({ 'if-match': '*' }, 'a=ice-ufrag:newU\r\na=ice-pwd:newpasswordnewpassword12\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n');
      assert.equal(restart.status, 422);
      assert.ok(endpoint.sessionCount >= 1, 'the session survives a refused restart');
      assert.equal((await fetch(loc, { method: 'DELETE' })).status, 401, 'DELETE needs the Bearer token too');
      assert.equal((await fetch(loc, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
      assert.equal((await fetch(loc, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    } finally {
      await obs.stop();
    }
  });

  test('OPTIONS: CORS that exposes Location/ETag/Link, Accept-Post, ICE servers as Link headers except on a preflight; GET → 204', async () => {
    const plain = await fetch(base, { method: 'OPTIONS' });
    assert.equal(plain.status, 204);
    assert.equal(plain.headers.get('accept-post'), 'application/sdp');
    assert.match(plain.headers.get('access-control-expose-headers')!, /Location.*ETag.*Link/);
    assert.match(plain.headers.get('access-control-allow-headers')!, /Authorization/);
    const links = plain.headers.get('link')!;
    assert.match(links, /<stun:127\.0\.0\.1:3478>; rel="ice-server"/);
    assert.match(links, /<turn:127\.0\.0\.1:3478\?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"/);
    const preflight = await fetch(base, { method: 'OPTIONS', headers: { 'access-control-request-method': 'POST', origin: 'http://x' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('link'), null);
    assert.equal((await fetch(base)).status, 204);
    assert.equal((await fetch(`${base}/sessions/nope`, { method: 'DELETE' })).status, 404);
    assert.equal((await fetch(base, { method: 'PUT' })).status, 405);
  });
});

after(() => shutdownRtc());
