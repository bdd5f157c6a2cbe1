/**
 * WHEPClient: a recvonly pull from a WHEP endpoint, used as a router source (the relay between Media Servers). The
 * answer's parameters become the source's; RTP and RTCP arrive on the handlers; RTCP sent on the source port (a PLI)
 * reaches the serving router's sink; stop() DELETEs. answerSourceParams is fuzzed: a result or an SdpError.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Router, buildPli, parseRtpHeader } from '../src/core/index.js';
import { FakeSourcePort, H264, OPUS, SyntheticPublisher, mulberry32 } from '../src/core/testing.js';
import { SdpError } from '../src/transport/sdp.js';
import { shutdownRtc } from '../src/transport/peer.js';
import { WhepEndpoint, WHEPClient, WhipHttpError, answerSourceParams, type WhepSession } from '../src/index.js';
import { serve, waitFor, type Served } from './helpers/serve.js';

const ANSWER = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1', 'a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuv',
  'm=video 9 UDP/TLS/RTP/SAVPF 102', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly', 'a=rtcp-mux', 'a=rtpmap:102 H264/90000', 'a=fmtp:102 profile-level-id=42e01f;packetization-mode=1',
  'a=rtcp-fb:102 nack', 'a=rtcp-fb:102 nack pli', 'a=ssrc:4242 cname:x',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:1', 'a=sendonly', 'a=rtpmap:111 opus/48000/2', 'a=ssrc:77 cname:x', 'a=setup:passive',
].join('\r\n') + '\r\n';

test('answerSourceParams: the answer\'s SSRC, payload types and feedback become the source\'s; nack and pli are assumed when the answer lists no feedback', () => {
  const p = answerSourceParams(ANSWER);
  assert.equal(p.video?.ssrc, 4242);
  assert.equal(p.video?.payloadType, 102);
  assert.deepEqual(p.video?.rtcpFeedback, ['nack', 'nack pli']);
  assert.equal(p.audio?.ssrc, 77);
  assert.equal(p.audio?.clockRate, 48000);
  const bare = answerSourceParams(ANSWER.replace(/a=rtcp-fb:[^\r\n]*\r\n/g, ''));
  assert.deepEqual(bare.video?.rtcpFeedback, ['nack', 'nack pli']);
  assert.throws(() => answerSourceParams(ANSWER.replace(/m=audio[\s\S]*/, '').replace('H264/90000', 'VP8/90000')), SdpError);
  assert.throws(() => answerSourceParams(ANSWER + 'm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:2\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1\r\n'), SdpError);
});

test('answerSourceParams: 20,000 mutated answers give parameters or an SdpError, never anything else', () => {
  const rand = mulberry32(0x3e9);
  const TOKENS = ['m=', 'a=', ':', ' ', '\r\n', '/', '=', ';', '102', '-1', '99999999999', 'ssrc', 'rtpmap', 'rtcp-fb', 'H264', 'opus', '\u0000'];
  let ok = 0;
  for (let i = 0; i < 20_000; i++) {
    let s = ANSWER;
    for (let k = 1 + Math.floor(rand() * 5); k > 0; k--) {
      const at = Math.floor(rand() * (s.length + 1));
      const r = rand();
      if (r < 0.4) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 20));
      else if (r < 0.8) s = s.slice(0, at) + TOKENS[Math.floor(rand() * TOKENS.length)] + s.slice(at);
      else s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(at + 1);
    }
    try {
      const p = answerSourceParams(s);
      assert.ok(p.audio || p.video);
      for (const x of [p.audio, p.video]) if (x) assert.ok(Number.isInteger(x.ssrc) && x.ssrc >= 0 && x.ssrc <= 0xffffffff && x.payloadType >= 0 && x.payloadType <= 127);
      ok++;
    } catch (err) {
      assert.ok(err instanceof SdpError, `not an SdpError: ${String(err)}`);
    }
  }
  assert.ok(ok > 100, `some mutations still parse (${ok})`);
});

describe('WHEPClient against a WhepEndpoint serving a Router', () => {
  let srv: Served;
  let whep: WhepEndpoint;
  const router = new Router();
  const source = new FakeSourcePort();
  const sessions: WhepSession[] = [];
  let pump: NodeJS.Timeout | undefined;

  before(async () => {
    srv = await serve((req) => whep.handle(req));
    whep = new WhepEndpoint({
      maxSessions: 4,
      bindAddress: '127.0.0.1',
      endpointUrl: () => `${srv.url}/relay`,
      basePath: '/relay',
      authorize: (token) => (token === 'the-secret' ? { ok: true } : { ok: false, status: 401 }),
      onSession: (s: WhepSession) => {
        sessions.push(s);
        s.onWritable(() => {
          const sink = router.addSink(s.sinkPort);
          s.onRtcp((p) => sink.handleRtcp(p));
          s.once('closed', () => sink.close());
        });
      },
    });
    router.setSource(source, { audio: { ...OPUS, ssrc: 11 }, video: { ...H264, ssrc: 22, rtcpFeedback: ['nack', 'nack pli'] } });
    const pub = new SyntheticPublisher({ videoSsrc: 22, audioSsrc: 11, videoSeq: 500, audioSeq: 50, videoTs: 1000, audioTs: 1000, packetsPerFrame: 2, payloadBytes: 300 });
    let f = 0;
    pump = setInterval(() => {
      for (const p of pub.videoFrame(f++ % 30 === 0)) router.pushRtp('video', p);
      router.pushRtp('audio', pub.audioPacket());
    }, 33);
    router.startTimer();
  });
  after(async () => {
    clearInterval(pump);
    whep.close();
    router.close();
    await srv.close();
    await shutdownRtc();
  });

  test('plays the stream with the SSRC its answer names, carries a PLI back to the serving router, and DELETEs on stop', async () => {
    const c = new WHEPClient({ url: `${srv.url}/relay`, token: 'the-secret', bindAddress: '127.0.0.1', id: 'puller' });
    const got = { video: 0, audio: 0, ssrc: 0 };
    c.onRtp((kind, p) => {
      got[kind]++;
      if (kind === 'video') got.ssrc = parseRtpHeader(p)?.ssrc ?? 0;
    });
    try {
      await c.start();
      assert.ok(c.params.video && c.params.audio);
      assert.ok((c.params.video.rtcpFeedback ?? []).includes('nack'));
      await waitFor(() => c.state === 'connected', 'connected');
      await waitFor(() => got.video > 20 && got.audio > 5, 'media');
      assert.equal(got.ssrc, c.params.video.ssrc);
      assert.equal(c.packetsReceived, got.video + got.audio);
      const plis = () => router.stats().sinks.reduce((n, s) => n + s.plisReceived, 0);
      const before = plis();
      c.sourcePort.sendRtcp(buildPli(1234, c.params.video.ssrc));
      await waitFor(() => plis() > before, 'the PLI reached the router sink');
      assert.equal(whep.sessionCount, 1);
    } finally {
      await c.stop();
    }
    assert.equal(c.state, 'closed');
    await waitFor(() => whep.sessionCount === 0, 'DELETE ended the session');
  });

  test('a refused POST (no secret) rejects start() with the HTTP status, and the client is closed', async () => {
    const c = new WHEPClient({ url: `${srv.url}/relay`, bindAddress: '127.0.0.1' });
    const closed: string[] = [];
    c.on('closed', (r) => closed.push(r));
    await assert.rejects(c.start(), (e: unknown) => e instanceof WhipHttpError && e.status === 401);
    assert.equal(closed.length, 1);
    assert.notEqual(c.state, 'connected');
  });
});
