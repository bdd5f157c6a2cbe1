/** Checks an offer against what WHIP/WHEP sessions accept, and builds the matching local Tracks. */
import { randomInt } from 'node:crypto';
import nodeDataChannel from 'node-datachannel';
import type { MediaKind, StreamParams } from '../core/types.js';
import { OfferRejected } from './endpoint.js';
import { withRtcpMuxOnly, type Peer } from './peer.js';
import { iceUfragOf, pickH264, pickOpus, primarySsrc, rtxFor, streamParams, type Codec, type MediaSection, type SessionDescription } from './sdp.js';
import { TrackHandle } from './track-io.js';

export interface AcceptedSection {
  m: MediaSection;
  kind: MediaKind;
  mid: string;
  codec: Codec;
}

/**
 * One audio (Opus) and/or one video (H.264, packetization-mode=1) section, bundled, with ICE and DTLS parameters.
 * `directions` are the offerer's directions we accept (WHIP: sendonly/sendrecv; WHEP: recvonly/sendrecv).
 */
export function acceptOffer(sd: SessionDescription, directions: readonly string[]): { sections: AcceptedSection[]; ufrag: string | undefined } {
  const sections: AcceptedSection[] = [];
  const seen = { audio: 0, video: 0 };
  for (const m of sd.media) {
    if (m.kind !== 'audio' && m.kind !== 'video') throw new OfferRejected(422, `a ${m.kind} section is not accepted; only one audio and one video track`);
    if (++seen[m.kind] > 1) throw new OfferRejected(422, `more than one ${m.kind} track; one audio and one video at most (RFC 9725 §4.4.2)`);
    if (m.rids.length > 0 || m.simulcast) throw new OfferRejected(422, 'simulcast is not accepted; publish a single layer');
    if (m.mid === undefined) throw new OfferRejected(400, 'every media section needs a=mid (BUNDLE)');
    if (!directions.includes(m.direction)) throw new OfferRejected(422, `a ${m.direction} ${m.kind} section is not accepted here (want ${directions.join(' or ')})`);
    if ((iceUfragOf(sd, m) ?? '') === '' || (m.icePwd ?? sd.icePwd ?? '') === '') throw new OfferRejected(400, 'the offer has no ICE credentials');
    if ((m.fingerprint ?? sd.fingerprint ?? '') === '') throw new OfferRejected(400, 'the offer has no DTLS fingerprint');
    const codec = m.kind === 'video' ? pickH264(m) : pickOpus(m);
    if (!codec) throw new OfferRejected(422, m.kind === 'video' ? 'video must be H.264 with packetization-mode=1' : 'audio must be Opus');
    sections.push({ m, kind: m.kind, mid: m.mid, codec });
  }
  if (sections.length === 0) throw new OfferRejected(422, 'the offer has no audio or video track');
  return { sections, ufrag: iceUfragOf(sd, sections[0]!.m) };
}

const fmtpString = (c: Codec) =>
  Object.entries(c.fmtp)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');

/** A local Track for an accepted section, restricted to the chosen codec so the answer names only it. */
export function addLocalTrack(
  peer: Peer,
  s: AcceptedSection,
  direction: 'RecvOnly' | 'SendOnly',
  ssrc?: { ssrc: number; cname: string; msid: string },
  onOpen?: () => void,
): TrackHandle {
  const desc = s.kind === 'video' ? new nodeDataChannel.Video(s.mid, direction) : new nodeDataChannel.Audio(s.mid, direction);
  const fmtp = fmtpString(s.codec);
  // node-datachannel refuses an explicit `undefined` profile: pass the fmtp only when there is one.
  if (desc instanceof nodeDataChannel.Video) {
    if (fmtp) desc.addH264Codec(s.codec.payloadType, fmtp);
    else desc.addH264Codec(s.codec.payloadType);
    // Receiving: accept RTX (RFC 4588) when offered, so the publisher resends what we NACK on its own SSRC and its
    // bandwidth probes never consume media sequence numbers. We never send RTX (a sink gets resends on the media SSRC).
    const rtx = direction === 'RecvOnly' ? rtxFor(s.m, s.codec.payloadType) : undefined;
    if (rtx !== undefined) desc.addRTXCodec(rtx, s.codec.payloadType, s.codec.clockRate);
  } else {
    const audio = desc as InstanceType<typeof nodeDataChannel.Audio>;
    if (fmtp) audio.addOpusCodec(s.codec.payloadType, fmtp);
    else audio.addOpusCodec(s.codec.payloadType);
  }
  if (ssrc) desc.addSSRC(ssrc.ssrc, ssrc.cname, ssrc.msid, s.kind);
  return new TrackHandle(s.kind, peer.addTrack(desc), onOpen);
}

/** The publisher's StreamParams for an accepted section (SSRC from the SDP, or 0 to learn it from packets). */
export const sourceParams = (s: AcceptedSection): StreamParams => streamParams(s.m, s.codec, primarySsrc(s.m));

/** Our own SSRC: random, never 0. */
export const newSsrc = () => randomInt(1, 0xffffffff);

/** Stream parameters of a sending Track of ours. No header extensions: the router strips them for this sink. */
export function sinkParams(s: AcceptedSection, ssrc: number): StreamParams {
  return { kind: s.kind, ssrc, payloadType: s.codec.payloadType, clockRate: s.codec.clockRate, extensions: {}, rtcpFeedback: s.codec.rtcpFb.slice() };
}

/**
 * The server side's answer to an accepted offer, once its tracks are added: apply the offer, answer, and wait for
 * every candidate (the answer must hold them all: OBS does not trickle). An offer libdatachannel refuses → 400.
 */
export async function answerOffer(peer: Peer, offer: string, gatherTimeoutMs = 5000): Promise<string> {
  try {
    peer.pc.setRemoteDescription(offer, 'offer');
    peer.pc.setLocalDescription('answer');
  } catch (err) {
    throw new OfferRejected(400, `offer not usable: ${err instanceof Error ? err.message : String(err)}`);
  }
  await peer.gathered(gatherTimeoutMs);
  return withRtcpMuxOnly(peer.localSdp());
}
