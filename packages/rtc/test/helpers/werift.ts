/**
 * werift (an independent WebRTC stack in TypeScript) set up as our interop tests use it: H.264 Constrained Baseline
 * and Opus, one bundled transport, and ICE on 127.0.0.1 only — never the machine's other addresses.
 */
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';

export const weriftCodecs = {
  video: [
    new RTCRtpCodecParameters({
      mimeType: 'video/H264',
      clockRate: 90000,
      rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
      parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1',
    }),
  ],
  audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 })],
};

/** max-bundle: an unbundled second transport's sockets outlive close() and keep the test process alive. */
export function weriftPeer(): RTCPeerConnection {
  return new RTCPeerConnection({
    codecs: weriftCodecs,
    bundlePolicy: 'max-bundle',
    iceUseIpv6: false,
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceFilterCandidatePair: (pair: { remoteCandidate: { host: string } }) => pair.remoteCandidate.host.startsWith('127.'),
  } as never);
}

const loopbackOnly = (sdp: string) => sdp.replace(/a=candidate:[^\r\n]*\r\n/g, (l) => (/ 127\.\d+\.\d+\.\d+ /.test(l) ? l : ''));

/** The peer's complete offer (gathering done, bounded), with loopback candidates only. */
export async function weriftOffer(pc: RTCPeerConnection, timeoutMs = 10_000): Promise<string> {
  await pc.setLocalDescription(await pc.createOffer());
  const deadline = Date.now() + timeoutMs;
  while (pc.iceGatheringState !== 'complete') {
    if (Date.now() > deadline) throw new Error(`werift gathering not complete after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return loopbackOnly(pc.localDescription!.sdp);
}
