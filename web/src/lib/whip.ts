/**
 * WHIP (RFC 9725) and WHEP from the browser: one offer with every candidate (we wait for ICE gathering, bounded),
 * POST as application/sdp with a Bearer token, 201 + Location, and DELETE of that Location on stop.
 */
export class WhipError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Session {
  pc: RTCPeerConnection;
  /** Absolute URL of the session resource (for DELETE). */
  location: string | null;
  stop(opts?: { keepalive?: boolean }): Promise<void>;
}

function gathered(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const done = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', done);
      clearTimeout(timer);
      resolve();
    };
    // Gathering may never say "complete" on some networks: send what we have after timeoutMs.
    const timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', done);
      resolve();
    }, timeoutMs);
    pc.addEventListener('icegatheringstatechange', done);
  });
}

/** The longest a WHIP/WHEP POST may take to be answered. */
const NEGOTIATE_TIMEOUT_MS = 15_000;

/** Sends pc's offer to a WHIP or WHEP endpoint and applies the answer. pc must have its transceivers. */
export async function negotiate(pc: RTCPeerConnection, url: string, token: string): Promise<Session> {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc, 3000);
  const headers: Record<string, string> = { 'content-type': 'application/sdp' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  let text: string;
  try {
    // A server whose host is gone may never answer: give up, so the caller can try elsewhere.
    res = await fetch(url, { method: 'POST', headers, body: pc.localDescription!.sdp, signal: AbortSignal.timeout(NEGOTIATE_TIMEOUT_MS) });
    text = await res.text();
  } catch (err) {
    // Unreachable or timed out: the connection that was never answered is closed here (the caller never gets it).
    pc.close();
    throw err;
  }
  if (res.status !== 201) {
    let msg = text;
    try {
      msg = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {
      /* plain text */
    }
    pc.close();
    throw new WhipError(res.status, `${res.status}: ${msg.slice(0, 300) || res.statusText}`);
  }
  const loc = res.headers.get('location');
  const location = loc ? new URL(loc, url).href : null;
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
  } catch (err) {
    pc.close();
    throw err;
  }
  let stopped = false;
  return {
    pc,
    location,
    async stop(opts = {}) {
      if (stopped) return;
      stopped = true;
      pc.close();
      if (!location) return;
      await fetch(location, { method: 'DELETE', headers: token ? { authorization: `Bearer ${token}` } : {}, keepalive: !!opts.keepalive }).catch(() => undefined);
    },
  };
}

/** Puts H.264 Constrained Baseline with packetization-mode=1 first (what IVS accepts), if the browser has it. */
export function preferBaselineH264(t: RTCRtpTransceiver): void {
  const caps = RTCRtpSender.getCapabilities?.('video');
  if (!caps || !('setCodecPreferences' in t)) return;
  const h264 = caps.codecs.filter((c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? ''));
  const baseline = h264.filter((c) => /profile-level-id=42e0/i.test(c.sdpFmtpLine ?? ''));
  const pick = baseline.length ? baseline : h264;
  // Keep RTX (RFC 4588): without it in the preferences the offer has none, and a packet the Media Server NACKs is
  // resent on the media SSRC, where it cannot be told from the original and bandwidth probes consume sequence numbers.
  const rtx = caps.codecs.filter((c) => c.mimeType === 'video/rtx');
  if (pick.length) t.setCodecPreferences([...pick, ...rtx]);
}
