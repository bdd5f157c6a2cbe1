/**
 * The relay between Media Servers under loss and jitter: the puller's relay session runs through the UDP impairment
 * relay (e2e/helpers/udp-relay.ts) — its offer goes without candidates and the origin's answer gets the relay's
 * address in place of the origin's candidate, as the impairment e2e does for browsers — with 3 % loss and 0–20 ms
 * jitter toward the puller and 3 % loss toward the origin. The puller's Router NACKs the origin (whose relay sink
 * answers from its packet store); the stage behind the puller must get nearly every packet and never stall.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { localStageArn, type Origin } from '@stagecast/protocol';
import { shutdownRtc, WHEPClient, WHIPClient } from '@stagecast/rtc';
import { SyntheticPublisher } from '@stagecast/rtc/testing';
import { UdpRelay } from '../../e2e/helpers/udp-relay.js';
import { parseConfig } from '../src/config.js';
import type { RelayConnector } from '../src/media/ports.js';
import { createMediaServer, type MediaServer } from '../src/system.js';
import { startFakeApi } from './helpers/fake-api.js';
import { testLogger } from './helpers/log.js';
import { startStages } from './helpers/rtc-stages.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'media-secret-0123456789';
const INGEST_TOKEN = 'obs-long-lived-token-0123456789';
const SECONDS = 8;

after(() => shutdownRtc());

/** The answer's first UDP host candidate, and the answer with every such candidate pointed at `to`. */
function hostCandidate(sdp: string): { address: string; port: number } | undefined {
  for (const l of sdp.split(/\r?\n/)) {
    const f = l.split(' ');
    if (l.startsWith('a=candidate:') && f.length >= 8 && f[2]!.toLowerCase() === 'udp' && f[7] === 'host') return { address: f[4]!, port: Number(f[5]) };
  }
  return undefined;
}
function pointCandidatesAt(sdp: string, to: { address: string; port: number }): string {
  return sdp
    .split('\r\n')
    .map((l) => {
      const f = l.split(' ');
      if (!l.startsWith('a=candidate:') || f.length < 8 || f[2]!.toLowerCase() !== 'udp' || f[7] !== 'host') return l;
      f[4] = to.address;
      f[5] = String(to.port);
      return f.join(' ');
    })
    .join('\r\n');
}

test(`relay under 3 % loss both ways and 0–20 ms jitter: the puller's stage gets ≥ 99 % of the video, recovered by NACKs toward the origin, with no stall`, { timeout: 90_000 }, async (t) => {
  const stages = await startStages();
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 200, whipBase: stages.base });
  api.pool = true;
  const { log, logs } = testLogger('info');
  const relays: UdpRelay[] = [];
  const impairedConnector: RelayConnector = async (o) => {
    const relay = await UdpRelay.start({ bindAddress: '127.0.0.1', seed: 7 + relays.length, down: { loss: 0.03, jitterMs: [0, 20] }, up: { loss: 0.03 } });
    relays.push(relay);
    const client = new WHEPClient({
      url: o.url,
      token: o.token,
      id: o.id,
      timeoutMs: o.timeoutMs,
      bindAddress: '127.0.0.1',
      answerTransform: (answer) => {
        const origin = hostCandidate(answer);
        assert.ok(origin, 'the origin answers with a host candidate');
        relay.setTarget(origin);
        return pointCandidatesAt(answer, { address: relay.address, port: relay.port });
      },
    });
    await client.start();
    return client;
  };
  const env = (id: string) => parseConfig({ PORT: '0', HOST: '127.0.0.1', MEDIA_SERVER_SECRET: SECRET, API_SERVER_URL: api.url, INGEST_TOKEN, RTC_BIND_ADDRESS: '127.0.0.1', SERVER_ID: id, DRAIN_TIMEOUT_MS: '0' });
  const servers: MediaServer[] = [];
  let pump: NodeJS.Timeout | undefined;
  let bc: WHIPClient | undefined;
  const S = localStageArn('lossy');
  try {
    const origin = await createMediaServer(env('ms-origin'), log.child({ ms: 'origin' }), { backoff: { baseMs: 100, capMs: 400 } });
    servers.push(origin);
    await origin.start();
    bc = new WHIPClient({ url: `http://127.0.0.1:${origin.port}/whip`, token: INGEST_TOKEN, bindAddress: '127.0.0.1', id: 'bc' });
    await bc.start();
    assert.ok(await bc.connected(10_000));
    const v = bc.sinkPort.video!;
    const a = bc.sinkPort.audio!;
    const pub = new SyntheticPublisher({ videoSsrc: v.ssrc, audioSsrc: a.ssrc, videoSeq: 100, audioSeq: 7, videoTs: 9000, audioTs: 4800, packetsPerFrame: 4, payloadBytes: 900 });
    pub.videoPt = v.payloadType;
    pub.audioPt = a.payloadType;
    let frame = 0;
    const client = bc;
    pump = setInterval(() => {
      for (const p of pub.videoFrame(frame++ % 60 === 0)) client.sinkPort.sendRtp('video', p);
      client.sinkPort.sendRtp('audio', pub.audioPacket());
    }, 33);

    api.stages.add(S);
    api.assignments.set(S, { serverId: 'ms-puller', previous: null });
    api.origin = { serverId: 'ms-origin' as Origin['serverId'], url: `http://127.0.0.1:${origin.port}` };
    const puller = await createMediaServer(env('ms-puller'), log.child({ ms: 'puller' }), { backoff: { baseMs: 100, capMs: 400 }, relayConnector: impairedConnector });
    servers.push(puller);
    await puller.start();
    const rx = () => stages.rx.get('lossy')?.[0];
    await waitFor(() => (rx()?.video.length ?? 0) > 30, { timeoutMs: 15_000, what: 'relayed video at the stage' });

    // Measure a window of SECONDS: sequence numbers that reached the stage, and the longest silence.
    const from = rx()!.video.length;
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const win = rx()!.video.slice(from);
    let maxGapMs = 0;
    for (let i = 1; i < win.length; i++) maxGapMs = Math.max(maxGapMs, win[i]!.at - win[i - 1]!.at);
    // Unwrap against the first packet; the range is what the origin sent in the window (minus the window's edges).
    const base = win[0]!.seq;
    const offs = win.map((p) => (p.seq - base + 0x10000) & 0xffff).filter((d) => d < 0x8000);
    const span = Math.max(...offs) + 1;
    const got = new Set(offs).size;
    const pull = puller.stats().relay!.pull;
    const down = relays[0]!.counters.down;
    t.diagnostic(`window ${SECONDS} s: ${got}/${span} video packets at the stage (${((100 * got) / span).toFixed(2)} %), longest gap ${maxGapMs} ms; relay dropped ${down.dropped}/${down.impaired} toward the puller; puller recovered ${pull.packetsRecovered}, pulls ${pull.pulls}`);
    assert.ok(down.dropped > 0, 'the impairment relay did drop packets');
    assert.equal(pull.pulls, 1, 'one relay session throughout: loss is recovered, not reconnected');
    assert.ok(pull.packetsRecovered > 0, 'the puller recovered packets by NACK toward the origin');
    assert.ok(got / span >= 0.99, `≥ 99 % of the video reached the stage (${got}/${span})`);
    assert.ok(maxGapMs < 500, `no stall at the stage (longest gap ${maxGapMs} ms)`);
    assert.deepEqual(relays.map((r) => r.kernelDrops()), relays.map(() => 0), 'no datagram lost to a full socket buffer');
  } catch (err) {
    console.log(logs.text.split('\n').slice(-80).join('\n'));
    throw err;
  } finally {
    clearInterval(pump);
    await bc?.stop();
    for (const s of servers) await s.stop();
    for (const r of relays) await r.close();
    await api.stop();
    await stages.close();
  }
});
