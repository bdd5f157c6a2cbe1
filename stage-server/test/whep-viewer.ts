/** A real WHEP viewer for stage tests: node-datachannel on 127.0.0.1. */
import nodeDataChannel from 'node-datachannel';
import { Peer, TrackHandle, withoutCandidates } from '@stagecast/rtc';

/** A WHEP viewer: a recvonly H.264 + Opus offer with every candidate, POSTed to the stage; counts RTP packets. */
export async function whepViewer(url: string, token: string) {
  const peer = new Peer({ name: 'test-viewer', bindAddress: '127.0.0.1' });
  const v = new nodeDataChannel.Video('0', 'RecvOnly');
  v.addH264Codec(102, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
  const a = new nodeDataChannel.Audio('1', 'RecvOnly');
  a.addOpusCodec(111);
  const counts = { audio: 0, video: 0 };
  const isRtp = (b: Buffer) => b.length >= 12 && !(b[1]! >= 192 && b[1]! <= 223);
  // Held for the viewer's lifetime, through TrackHandle (which registers onClosed): a collected Track goes silent,
  // and node-datachannel's cleanup() crashes on a collected Track that never had an onClosed callback.
  const tracks = [new TrackHandle('video', peer.addTrack(v)), new TrackHandle('audio', peer.addTrack(a))];
  tracks[0]!.track.onMessage((b) => void (isRtp(b) && counts.video++));
  tracks[1]!.track.onMessage((b) => void (isRtp(b) && counts.audio++));
  peer.pc.setLocalDescription('offer');
  await peer.gathered(5000);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    // Without candidates, as OBS and our WHIPClient send: with them, the stage can start ICE and DTLS before we
    // hold its answer, and libdatachannel then refuses the answer ("remote candidate without ICE transport").
    body: withoutCandidates(peer.localSdp()),
  });
  const body = await res.text();
  if (res.status === 201) {
    try {
      peer.pc.setRemoteDescription(body, 'answer');
    } catch (e) {
      throw new Error(`viewer state ${peer.state} gathering ${peer.pc.gatheringState()} sig ${peer.pc.signalingState()}: ${(e as Error).message}\nOFFER:\n${peer.localSdp()}\nANSWER:\n${body}`);
    }
  }
  const location = res.status === 201 ? new URL(res.headers.get('location')!, url).toString() : undefined;
  return {
    status: res.status,
    res,
    body,
    counts,
    peer,
    tracks,
    async stop() {
      if (location) await fetch(location, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
      peer.close();
    },
  };
}
