/**
 * Interop with an independent WebRTC stack inside a real stage: werift (pure TypeScript: its own ICE, DTLS and SRTP)
 * publishes by WHIP into a stage with a publish token, and a second werift peer plays it by WHEP with a subscribe
 * token. The viewer reassembles what it gets: the SPS (read from the bitstream, 640x480 Constrained Baseline), whole
 * frames under its own SSRC, and the publisher's audio. Both peers gather on 127.0.0.1 only.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import nodeDataChannel from 'node-datachannel';
import { MediaStreamTrack, type RtpPacket } from 'werift';
import { CreateStageResponseSchema, type LocalStage } from '@stagecast/protocol';
import { NAL_FU_A, NAL_SPS, NAL_STAP_A, parseH264Sps, type H264Sps } from '@stagecast/rtc';
import { SyntheticPublisher } from '@stagecast/rtc/testing';
import { weriftOffer, weriftPeer } from '../../packages/rtc/test/helpers/werift.js';
import type { StageServer } from '../src/app.js';
import { createRtcPlane } from '../src/services/rtc-plane.js';
import { startFakeApi, type FakeApi } from './fake-api.js';
import { admin, startInProcess, tempDir, waitFor } from './helpers.js';

async function post(url: string, token: string, sdp: string): Promise<{ status: number; body: string; location: string | null }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` }, body: sdp });
  return { status: r.status, body: await r.text(), location: r.headers.get('location') };
}

/** What a viewer can tell from the RTP it receives, without a decoder: SSRCs, the SPS, whole frames. */
class H264Receipt {
  ssrcs = new Set<number>();
  sps: H264Sps | undefined;
  frames = 0;
  private inFrame = false;
  private lastSeq = -1;

  add(p: RtpPacket): void {
    const payload = p.payload;
    if (payload.length < 2) return;
    this.ssrcs.add(p.header.ssrc);
    const seq = p.header.sequenceNumber;
    const contiguous = this.lastSeq < 0 || seq === ((this.lastSeq + 1) & 0xffff);
    this.lastSeq = seq;
    const type = payload[0]! & 0x1f;
    if (type === NAL_STAP_A) {
      for (let i = 1; i + 2 <= payload.length; ) {
        const len = payload.readUInt16BE(i);
        if (i + 2 + len > payload.length) break;
        if ((payload[i + 2]! & 0x1f) === NAL_SPS) this.sps = parseH264Sps(payload, i + 2, i + 2 + len);
        i += 2 + len;
      }
    } else if (type === NAL_FU_A) {
      const start = (payload[1]! & 0x80) !== 0;
      const end = (payload[1]! & 0x40) !== 0;
      if (start) this.inFrame = true;
      else if (!contiguous) this.inFrame = false;
      if (end && this.inFrame && p.header.marker) {
        this.frames++;
        this.inFrame = false;
      }
    }
  }
}

let api: FakeApi;
let server: StageServer;
let base: string;
let dir: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  api = await startFakeApi();
  dir = await tempDir();
  ({ server, base } = await startInProcess(
    { DATA_DIR: dir.path, API_SERVER_URL: api.url, RTC_BIND_ADDRESS: '127.0.0.1' },
    { plane: createRtcPlane(), reporter: { flushDelayMs: 10 } },
  ));
});
after(async () => {
  await server?.stop();
  await api?.close();
  await dir?.remove();
  nodeDataChannel.cleanup();
});

test('werift publishes H.264 + Opus by WHIP into a stage and a werift viewer plays it by WHEP: SPS 640x480 Constrained Baseline, whole frames under the viewer’s own SSRC, audio', { timeout: 60_000 }, async () => {
  const stage: LocalStage = CreateStageResponseSchema.parse(await (await admin(base).create()).json()).stage;
  const pub = weriftPeer();
  const play = weriftPeer();
  try {
    const video = new MediaStreamTrack({ kind: 'video' });
    const audio = new MediaStreamTrack({ kind: 'audio' });
    pub.addTransceiver(video, { direction: 'sendonly' });
    pub.addTransceiver(audio, { direction: 'sendonly' });
    const pubToken = await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'werift-pub' });
    const whip = await post(stage.whipUrl, pubToken, await weriftOffer(pub));
    assert.equal(whip.status, 201, whip.body);
    assert.ok(whip.location, 'WHIP Location');
    await pub.setRemoteDescription({ type: 'answer', sdp: whip.body });

    play.addTransceiver('video', { direction: 'recvonly' });
    play.addTransceiver('audio', { direction: 'recvonly' });
    const receipt = new H264Receipt();
    let audioPackets = 0;
    play.onTrack.subscribe((t) =>
      t.onReceiveRtp.subscribe((p) => {
        if (t.kind === 'video') receipt.add(p);
        else audioPackets++;
      }),
    );
    const whep = await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'werift-viewer' }), await weriftOffer(play));
    assert.equal(whep.status, 201, whep.body);
    await play.setRemoteDescription({ type: 'answer', sdp: whep.body });
    await waitFor(() => pub.connectionState === 'connected' && play.connectionState === 'connected', { timeoutMs: 15_000, what: 'werift peers connected' });

    const videoPt = Number(/a=rtpmap:(\d+) H264/.exec(pub.localDescription!.sdp)![1]);
    const audioPt = Number(/a=rtpmap:(\d+) opus/i.exec(pub.localDescription!.sdp)![1]);
    const gen = new SyntheticPublisher({ videoSsrc: 0x1111, audioSsrc: 0x2222, videoSeq: 100, audioSeq: 200, videoTs: 1000, audioTs: 2000 });
    gen.videoPt = videoPt;
    gen.audioPt = audioPt;
    let frame = 0;
    // ~30 fps for as long as it takes, keyframe every 30 frames; bounded by the wait's timeout.
    await waitFor(
      () => {
        for (const p of gen.videoFrame(frame++ % 30 === 0)) video.writeRtp(Buffer.from(p));
        audio.writeRtp(Buffer.from(gen.audioPacket()));
        audio.writeRtp(Buffer.from(gen.audioPacket()));
        return receipt.sps !== undefined && receipt.frames >= 30 && audioPackets >= 30;
      },
      { timeoutMs: 20_000, intervalMs: 33, what: `werift viewer: SPS + 30 frames + 30 audio packets (frames ${receipt.frames}, audio ${audioPackets})` },
    );

    assert.equal(receipt.sps!.width, 640);
    assert.equal(receipt.sps!.height, 480);
    assert.equal(receipt.sps!.profileName, 'Constrained Baseline');
    assert.equal(receipt.ssrcs.size, 1, 'one video SSRC at the viewer');
    assert.notEqual([...receipt.ssrcs][0], gen.videoSsrc, 'the viewer gets the stage’s SSRC, not the publisher’s');
    const stats = server.stages.room(stage.stageId).stats();
    assert.equal(stats.publisher.state, 'connected');
    assert.equal(stats.viewers, 1);
    assert.ok(stats.keyframesReceived >= 1, 'the stage saw the keyframe');

    // WHIP DELETE (with the session's own token) ends the publisher; the viewer stays a viewer of the stage.
    const del = await fetch(new URL(whip.location!, stage.whipUrl), { method: 'DELETE', headers: { authorization: `Bearer ${pubToken}` } });
    assert.ok(del.status === 200 || del.status === 204, `DELETE → ${del.status}`);
    await waitFor(() => server.stages.room(stage.stageId).stats().publisher.state === 'offline', { timeoutMs: 5000, what: 'publisher offline after DELETE' });
    assert.equal(server.stages.room(stage.stageId).stats().viewers, 1);
  } finally {
    await pub.close();
    await play.close();
  }
});
