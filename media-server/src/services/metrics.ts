/** Prometheus metrics on an own Registry, read from the stats snapshot at scrape time (no per-packet work). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { MediaServerStats } from '@stagecast/protocol';

export function createMetrics(snapshot: () => MediaServerStats): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'stagecast_media_' });
  const g = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name: `stagecast_media_${name}`, help, labelNames, registers: [registry] });
  // Read the snapshot once per scrape, in the first gauge's collect (registered first, so collected first).
  const publisherOnline = new Gauge({
    name: 'stagecast_media_publisher_online',
    help: '1 when a broadcaster is live',
    registers: [registry],
    collect() {
      fill(this);
    },
  });
  const bitrate = g('publisher_bitrate_bps', 'Broadcaster bitrate (bits/s)');
  const packetsIn = g('publisher_packets_received', 'RTP packets received from the broadcaster');
  const keyframesIn = g('publisher_keyframes_received', 'Keyframes received from the broadcaster');
  const lostIn = g('publisher_packets_lost', 'RTP packets lost from the broadcaster');
  const expected = g('stages_expected', 'Stages the API Server has');
  const connected = g('stages_connected', 'Stages with a connected leg');
  const legState = g('legs', 'Legs by state', ['state']);
  const legPackets = g('leg_packets_sent', 'RTP packets sent into a stage', ['stage']);
  const legKeyframes = g('leg_keyframes_sent', 'Keyframes sent into a stage', ['stage']);
  const legLost = g('leg_packets_lost', 'Packets lost on a leg (receiver reports)', ['stage']);
  const legRtt = g('leg_rtt_ms', 'Round-trip time of a leg', ['stage']);
  const errors = g('errors', 'Error counters', ['kind']);
  const registered = g('api_registration_fresh', '1 when the API Server acknowledged us recently');
  const wsUp = g('api_websocket_up', '1 when the API Server WebSocket is connected');
  // Counters mirrored from the snapshot's monotonic totals (the ingest service owns the counting).
  const c = (name: string, help: string) => new Counter({ name: `stagecast_media_${name}`, help, labelNames: ['code'], registers: [registry] });
  const nacksSent = new Counter({ name: 'stagecast_media_publisher_nacks_sent_total', help: 'NACK entries sent to the broadcaster (one per packet asked for)', registers: [registry] });
  const recovered = new Counter({ name: 'stagecast_media_publisher_packets_recovered_total', help: 'Broadcaster packets recovered after a NACK', registers: [registry] });
  const lostForGood = new Counter({ name: 'stagecast_media_publisher_packets_lost_for_good_total', help: 'Broadcaster packets never recovered (given up on)', registers: [registry] });
  const ivsRefusals = c('ivs_refusals_total', 'Broadcaster streams or offers refused because Amazon IVS would refuse them, by rule');
  const ivsWarnings = c('ivs_warnings_total', 'IVS limits exceeded without refusal (bitrate, keyframe interval, or rules not enforced), by rule');
  const ivsEnforcing = g('ivs_rules_enforcing', '1 when IVS rules are enforced (IVS_RULES=enforce, or auto with an IVS stage)');
  const ivsRejoins = g('ivs_refused_reconnects', 'POSTs answered 422 because their token was refused moments ago');

  function fill(online: Gauge): void {
    const s = snapshot();
    online.set(s.publisher.online ? 1 : 0);
    bitrate.set(s.publisher.bitrateBps);
    packetsIn.set(s.publisher.packetsReceived);
    keyframesIn.set(s.publisher.keyframesReceived);
    lostIn.set(s.publisher.lost);
    for (const [counter, v] of [
      [nacksSent, s.publisher.nacksSent ?? 0],
      [recovered, s.publisher.packetsRecovered ?? 0],
      [lostForGood, s.publisher.packetsLostForGood ?? 0],
    ] as const) {
      counter.reset();
      counter.inc(v);
    }
    expected.set(s.stages.expected);
    connected.set(s.stages.connected);
    legState.reset();
    for (const st of ['connecting', 'connected', 'failed', 'closed']) legState.set({ state: st }, 0);
    legPackets.reset();
    legKeyframes.reset();
    legLost.reset();
    legRtt.reset();
    // While a leg is replaced (rotation, make-before-break) a stage has two: its series follow the one that carries
    // the stage's media — connected, and the longer-running of two connected — not whichever is listed last.
    const perStage = new Map<string, (typeof s.legs)[number]>();
    for (const l of s.legs) {
      legState.inc({ state: l.state });
      const cur = perStage.get(l.stageArn);
      const better = !cur || (l.state === 'connected' && (cur.state !== 'connected' || l.packetsSent > cur.packetsSent));
      if (better) perStage.set(l.stageArn, l);
    }
    for (const l of perStage.values()) {
      const stage = l.stageArn.slice(l.stageArn.lastIndexOf('/') + 1);
      legPackets.set({ stage }, l.packetsSent);
      legKeyframes.set({ stage }, l.keyframesSent);
      legLost.set({ stage }, l.cumulativeLost);
      if (l.rttMs !== undefined) legRtt.set({ stage }, l.rttMs);
    }
    for (const [kind, v] of Object.entries(s.errors)) errors.set({ kind }, v);
    registered.set(s.api.registrationFresh ? 1 : 0);
    wsUp.set(s.api.websocket === 'up' ? 1 : 0);
    ivsRefusals.reset();
    ivsWarnings.reset();
    if (s.ivs) {
      for (const [code, n] of Object.entries(s.ivs.refusalsByCode)) ivsRefusals.inc({ code }, n);
      for (const [code, n] of Object.entries(s.ivs.warningsByCode)) ivsWarnings.inc({ code }, n);
      ivsEnforcing.set(s.ivs.enforcing ? 1 : 0);
      ivsRejoins.set(s.ivs.refusedReconnects);
    }
  }
  return registry;
}
