/** Seeded fuzzing of the SDP and sdpfrag readers and of the endpoints' POST/PATCH paths: bad input is a typed error or a 4xx, never a crash. */
import assert from 'node:assert/strict';
import { shutdownRtc } from '../src/transport/peer.js';
import { after, test } from 'node:test';
import { mulberry32 } from '../src/core/testing.js';
import { SdpError, parseSdp, parseSdpFrag, parseSpropParameterSets } from '../src/transport/sdp.js';
import { WhipEndpoint } from '../src/transport/index.js';

const VALID = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1', 'a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuv',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly', 'a=rtcp-mux', 'a=rtpmap:96 H264/90000', 'a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;sprop-parameter-sets=Z0LAHtkAoD2hAAADAAEAAAMAPI8WLkg=,aM48gA==',
  'a=rtcp-fb:96 nack pli', 'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96', 'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid', 'a=ssrc-group:FID 1 2', 'a=ssrc:1 cname:x', 'a=ssrc:2 cname:x',
  'a=candidate:1 1 UDP 2122260223 127.0.0.1 5000 typ host', 'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:1', 'a=sendonly', 'a=rtpmap:111 opus/48000/2', 'a=setup:actpass',
].join('\r\n') + '\r\n';

const TOKENS = ['v=0', 'm=', 'a=', ':', ' ', '\r\n', '\n', '/', '=', ';', '96', '-1', '99999999999', 'rtpmap', 'fmtp', 'ssrc', 'extmap', 'candidate', 'H264', 'opus', '\u0000', 'é', 'a=mid:', 'a=rid:h send'];

function mutate(rand: () => number, s: string): string {
  const ops = 1 + Math.floor(rand() * 6);
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(rand() * (s.length + 1));
    const r = rand();
    if (r < 0.3) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 20));
    else if (r < 0.6) s = s.slice(0, at) + TOKENS[Math.floor(rand() * TOKENS.length)] + s.slice(at);
    else if (r < 0.8) s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(at + 1);
    else {
      const lines = s.split('\r\n');
      const a = Math.floor(rand() * lines.length);
      lines.splice(Math.floor(rand() * lines.length), 0, lines[a] ?? '');
      s = lines.join('\r\n');
    }
  }
  return s;
}

test('sprop-parameter-sets: an SPS and a PPS, or nothing — never a partial or oversized pair', () => {
  const sets = parseSpropParameterSets('Z0LAHtkAoD2hAAADAAEAAAMAPI8WLkg=,aM48gA==')!;
  assert.deepEqual(sets.map((n) => n[0]! & 0x1f), [7, 8]);
  assert.equal(parseSpropParameterSets('Z0LAHtkAoD2hAAADAAEAAAMAPI8WLkg='), undefined, 'SPS without PPS');
  assert.equal(parseSpropParameterSets('not base64!,aM48gA=='), undefined);
  assert.equal(parseSpropParameterSets('5w==,aM48gA=='), undefined, 'forbidden bit set / too short');
  assert.equal(parseSpropParameterSets(Buffer.alloc(600, 0x67).toString('base64') + ',aM48gA=='), undefined, 'oversized');
  const rand = mulberry32(0x5b0);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=,é ';
  for (let i = 0; i < 5000; i++) {
    const v = Array.from({ length: Math.floor(rand() * 80) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    const r = parseSpropParameterSets(v);
    assert.ok(r === undefined || (r.length === 2 && (r[0]![0]! & 0x1f) === 7 && (r[1]![0]! & 0x1f) === 8));
  }
});

test('parseSdp and parseSdpFrag: 20,000 mutated and random inputs give a result or an SdpError, never anything else', () => {
  const rand = mulberry32(0x5d9);
  let ok = 0;
  for (let i = 0; i < 20_000; i++) {
    const input = i % 10 === 0 ? Array.from({ length: Math.floor(rand() * 300) }, () => String.fromCharCode(Math.floor(rand() * 128))).join('') : mutate(rand, VALID);
    for (const parse of [parseSdp, parseSdpFrag]) {
      try {
        const r = parse(input);
        assert.ok(r);
        ok++;
      } catch (err) {
        assert.ok(err instanceof SdpError, `${String(err)} for ${JSON.stringify(input.slice(0, 200))}`);
      }
    }
  }
  assert.ok(ok > 1000, 'the mutations keep many inputs valid, so the deep paths are reached');
  assert.throws(() => parseSdp('v=0\r\n' + 'a=x\r\n'.repeat(5000)), SdpError, 'line cap');
  assert.throws(() => parseSdp('v=0\r\n' + 'x'.repeat(70_000)), SdpError, 'size cap');
});

test('the WHIP endpoint answers 2,000 mutated offers with 201 or a 4xx and stays usable', async () => {
  const sessions: { close(): void }[] = [];
  const ep = new WhipEndpoint({ endpointUrl: () => 'http://127.0.0.1:1/whip', basePath: '/whip', maxSessions: 5000, bindAddress: '127.0.0.1', gatherTimeoutMs: 1000, onSession: (s) => sessions.push(s) });
  const rand = mulberry32(77);
  const valid = await ep.handle({ method: 'POST', url: '/whip', headers: { 'content-type': 'application/sdp' }, body: Buffer.from(VALID) });
  assert.equal(valid.status, 201, String(valid.body));
  for (const s of sessions.splice(0)) s.close();
  const statuses = new Map<number, number>();
  try {
    for (let i = 0; i < 2000; i++) {
      const body = Buffer.from(mutate(rand, VALID));
      const res = await ep.handle({ method: 'POST', url: '/whip', headers: { 'content-type': 'application/sdp' }, body });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status === 201 || (res.status >= 400 && res.status < 500), `status ${res.status}: ${String(res.body)}`);
      for (const s of sessions.splice(0)) s.close();
      const patch = await ep.handle({ method: 'PATCH', url: '/whip/sessions/x', headers: { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': '*' }, body });
      assert.equal(patch.status, 404);
    }
  } finally {
    ep.close();
  }
  assert.ok((statuses.get(201) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, JSON.stringify([...statuses]));
});

after(() => shutdownRtc());
