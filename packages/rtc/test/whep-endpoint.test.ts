/** WHEP playback through the Router, and interop with an independent stack (werift) on both WHIP and WHEP. */
import assert from 'node:assert/strict';
import { shutdownRtc } from '../src/transport/peer.js';
import { after, before, describe, test } from 'node:test';
import nodeDataChannel from 'node-datachannel';
import { MediaStreamTrack } from 'werift';
import { Router } from '../src/core/index.js';
import { Peer, TrackHandle, WhepEndpoint, WhipEndpoint, parseRtpHeader, withoutCandidates, type WhepSession, type WhipSession } from '../src/index.js';
import { parseSdp } from '../src/transport/sdp.js';
import { SyntheticPublisher } from '../src/core/testing.js';
import { ObsLikePublisher } from './helpers/obs.js';
import { serve, waitFor, type Served } from './helpers/serve.js';
import { weriftOffer, weriftPeer } from './helpers/werift.js';

/** A stage in miniature: one Router, WHIP in, WHEP out, as the stage server wires them. */
describe('WHEP endpoint and interop', () => {
  let srv: Served;
  let whip: WhipEndpoint;
  let whep: WhepEndpoint;
  const router = new Router();
  const viewers: WhepSession[] = [];

  before(async () => {
    srv = await serve((req) => (req.url.startsWith('/whep') ? whep.handle(req) : whip.handle(req)));
    const common = { maxSessions: 10, bindAddress: '127.0.0.1' };
    whip = new WhipEndpoint({
      ...common,
      endpointUrl: () => `${srv.url}/whip`,
      basePath: '/whip',
      onSession: (s: WhipSession) => {
        router.setSource(s.sourcePort, s.params);
        s.onRtp((kind, p) => router.pushRtp(kind, p));
        s.onRtcp((p) => router.pushRtcp(p));
        s.once('closed', () => router.clearSource());
      },
    });
    whep = new WhepEndpoint({
      ...common,
      endpointUrl: () => `${srv.url}/whep`,
      basePath: '/whep',
      onSession: (s: WhepSession) => {
        viewers.push(s);
        const sink = router.addSink(s.sinkPort);
        s.onRtcp((p) => sink.handleRtcp(p));
        s.once('closed', () => sink.close());
      },
    });
    router.startTimer();
  });
  after(async () => {
    whip.close();
    whep.close();
    router.close();
    await srv.close();
  });

  /** A node-datachannel player: recvonly H.264 + Opus, counting RTP per SSRC. */
  async function ndPlayer() {
    const peer = new Peer({ name: 'player', bindAddress: '127.0.0.1' });
    const v = new nodeDataChannel.Video('0', 'RecvOnly');
    v.addH264Codec(98, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
    const a = new nodeDataChannel.Audio('1', 'RecvOnly');
    a.addOpusCodec(109);
    const video = new TrackHandle('video', peer.addTrack(v));
    const audio = new TrackHandle('audio', peer.addTrack(a)); // held: see TrackHandle
    const got = { video: 0, ssrc: 0, pt: 0 };
    video.track.onMessage((buf) => {
      const h = parseRtpHeader(buf);
      if (!h || buf[1]! >= 192) return;
      got.video++;
      got.ssrc = h.ssrc;
      got.pt = h.payloadType;
    });
    peer.pc.setLocalDescription('offer');
    await peer.gathered();
    // Offered without candidates like WHIPClient: a libdatachannel offerer that lists them races the server's DTLS
    // against its own setRemoteDescription ('remote candidate without ICE transport', ~1 start in 50 on loopback).
    const res = await fetch(`${srv.url}/whep`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: withoutCandidates(peer.localSdp()) });
    assert.equal(res.status, 201);
    const answer = await res.text();
    peer.pc.setRemoteDescription(answer, 'answer');
    return { peer, got, tracks: [video, audio], answer: parseSdp(answer), location: res.headers.get('location')! };
  }

  test('a viewer that connects before any publisher stays connected and gets media, with its own SSRC and payload type, as soon as it arrives', async () => {
    const player = await ndPlayer();
    const obs = new ObsLikePublisher();
    try {
      const video = player.answer.media.find((m) => m.kind === 'video')!;
      assert.equal(video.direction, 'sendonly');
      assert.deepEqual(video.formats, [98], 'the answer keeps the offer\'s payload type and only H.264');
      assert.equal(video.ssrcs.length, 1);
      assert.ok(await player.peer.connected(), 'viewer connected with no publisher');
      assert.equal(player.got.video, 0);
      assert.equal((await obs.publish(`${srv.url}/whip`)).status, 201);
      assert.ok(await obs.peer.connected());
      obs.startMedia(15);
      await waitFor(() => player.got.video > 30, 'video at the viewer');
      assert.equal(player.got.ssrc, video.ssrcs[0], 'the viewer sees the SSRC its answer announced');
      assert.equal(player.got.pt, 98);
      assert.equal(player.peer.state, 'connected');
      // The publisher leaves and comes back: the viewer's connection survives and media resumes.
      await obs.stop();
      await waitFor(() => !router.hasSource, 'publisher gone');
      const before = player.got.video;
      const again = new ObsLikePublisher();
      try {
        assert.equal((await again.publish(`${srv.url}/whip`)).status, 201);
        again.startMedia(15);
        await waitFor(() => player.got.video > before + 30, 'media resumes after the publisher returns');
        assert.equal(player.peer.state, 'connected');
      } finally {
        await again.stop();
      }
      assert.equal((await fetch(player.location, { method: 'DELETE' })).status, 200);
      await waitFor(() => viewers.at(-1)!.closed, 'DELETE ends the viewer session');
    } finally {
      await obs.stop();
      player.peer.close();
    }
  });

  test('a recvonly WHEP offer is required: a sendonly one is refused with 422', async () => {
    const offer = await new ObsLikePublisher().offer();
    const r = await fetch(`${srv.url}/whep`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
    assert.equal(r.status, 422);
  });

  test('werift publishes by WHIP and plays by WHEP through the router', async () => {
    const pub = weriftPeer();
    const play = weriftPeer();
    try {
      const track = new MediaStreamTrack({ kind: 'video' });
      pub.addTransceiver(track, { direction: 'sendonly' });
      const res = await fetch(`${srv.url}/whip`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: await weriftOffer(pub) });
      assert.equal(res.status, 201);
      await pub.setRemoteDescription({ type: 'answer', sdp: await res.text() });

      play.addTransceiver('video', { direction: 'recvonly' });
      let received = 0;
      play.onTrack.subscribe((t) => t.onReceiveRtp.subscribe(() => received++));
      const res2 = await fetch(`${srv.url}/whep`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: await weriftOffer(play) });
      assert.equal(res2.status, 201);
      await play.setRemoteDescription({ type: 'answer', sdp: await res2.text() });

      await waitFor(() => pub.connectionState === 'connected' && play.connectionState === 'connected', 'werift peers connected', 15_000);
      const pt = Number(/a=rtpmap:(\d+) H264/.exec(pub.localDescription!.sdp)![1]);
      const gen = new SyntheticPublisher({ videoSsrc: 77, audioSsrc: 78, videoSeq: 1, audioSeq: 1, videoTs: 1, audioTs: 1 });
      gen.videoPt = pt;
      await waitFor(
        async () => {
          for (const p of gen.videoFrame(gen.videoSeq < 20 || gen.videoSeq % 60 === 0)) track.writeRtp(Buffer.from(p));
          await new Promise((r) => setTimeout(r, 15));
          return received > 20;
        },
        'werift → WHIP → router → WHEP → werift',
        15_000,
      );
    } finally {
      await pub.close();
      await play.close();
    }
  });
});

after(() => shutdownRtc());
