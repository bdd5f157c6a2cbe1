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
  // Monotonic figures are counters (`*_total`), mirrored from the snapshot's totals at scrape time. A total that
  // starts again (a new broadcaster session, a rotated leg) is a counter reset, which rate() and increase() handle.
  const total = (name: string, help: string, labelNames: string[] = []) => new Counter({ name: `stagecast_media_${name}`, help, labelNames, registers: [registry] });
  const packetsIn = total('publisher_packets_received_total', 'RTP packets received from the broadcaster');
  const keyframesIn = total('publisher_keyframes_received_total', 'Keyframes received from the broadcaster');
  const lostIn = total('publisher_packets_lost_total', 'RTP packets lost from the broadcaster');
  const expected = g('stages_expected', 'Stages the API Server has');
  const connected = g('stages_connected', 'Stages with a connected leg');
  const legState = g('legs', 'Legs by state', ['state']);
  const legPackets = total('leg_packets_sent_total', 'RTP packets sent into a stage', ['stage']);
  const legKeyframes = total('leg_keyframes_sent_total', 'Keyframes sent into a stage', ['stage']);
  const legLost = total('leg_packets_lost_total', 'Packets lost on a leg (receiver reports)', ['stage']);
  const legRtt = g('leg_rtt_ms', 'Round-trip time of a leg', ['stage']);
  const errors = total('errors_total', 'Errors by kind (leg failures, sync, heartbeat, API requests, refused or conflicting ingest)', ['kind']);
  const registered = g('api_registration_fresh', '1 when the API Server acknowledged us recently');
  const wsUp = g('api_websocket_up', '1 when the API Server WebSocket is connected');
  // Counters mirrored from the snapshot's monotonic totals (the ingest service owns the counting).
  const c = (name: string, help: string) => new Counter({ name: `stagecast_media_${name}`, help, labelNames: ['code'], registers: [registry] });
  const nacksSent = total('publisher_nacks_sent_total', 'NACK entries sent to the broadcaster (one per packet asked for)');
  const recovered = total('publisher_packets_recovered_total', 'Broadcaster packets recovered after a NACK');
  const lostForGood = total('publisher_packets_lost_for_good_total', 'Broadcaster packets never recovered (given up on)');
  const ivsRefusals = c('ivs_refusals_total', 'Broadcaster streams or offers refused because Amazon IVS would refuse them, by rule');
  const ivsWarnings = c('ivs_warnings_total', 'IVS limits exceeded without refusal (bitrate, keyframe interval, or rules not enforced), by rule');
  const ivsEnforcing = g('ivs_rules_enforcing', '1 when IVS rules are enforced (IVS_RULES=enforce, or auto with an IVS stage)');
  const ingestKind = g('ingest', '1 for what feeds this server: the broadcaster, a relay from the origin, or none', ['kind']);
  const relayPulling = g('relay_pulling', '1 while this server pulls the broadcast from the origin (labelled with the origin)', ['origin']);
  const relayPackets = total('relay_packets_received_total', 'RTP packets received on the current relay session from the origin');
  const relayRecovered = total('relay_packets_recovered_total', 'Relay packets recovered by NACKs toward the origin');
  const relayReconnects = total('relay_reconnects_total', 'Relay sessions started again after a failure');
  const relayFailures = total('relay_failures_total', 'Relay sessions that failed or could not be set up');
  const relaySwitches = total('relay_origin_switches_total', 'Changes of origin while pulling');
  const relaySinks = g('relay_sinks', 'Relay sessions this server serves to other Media Servers now');
  const relaySinksServed = total('relay_sinks_served_total', 'Relay sessions served to other Media Servers');
  const relayRefused = total('relay_refused_total', 'Relay POSTs refused for a missing or wrong secret');
  const ivsRejoins = total('ivs_refused_reconnects_total', 'POSTs answered 422 because their token was refused moments ago');

  function fill(online: Gauge): void {
    const s = snapshot();
    online.set(s.publisher.online ? 1 : 0);
    bitrate.set(s.publisher.bitrateBps);
    mirror(packetsIn, s.publisher.packetsReceived);
    mirror(keyframesIn, s.publisher.keyframesReceived);
    mirror(lostIn, Math.max(0, s.publisher.lost));
    mirror(nacksSent, s.publisher.nacksSent ?? 0);
    mirror(recovered, s.publisher.packetsRecovered ?? 0);
    mirror(lostForGood, s.publisher.packetsLostForGood ?? 0);
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
      legPackets.inc({ stage }, l.packetsSent);
      legKeyframes.inc({ stage }, l.keyframesSent);
      legLost.inc({ stage }, Math.max(0, l.cumulativeLost));
      if (l.rttMs !== undefined) legRtt.set({ stage }, l.rttMs);
    }
    errors.reset();
    for (const [kind, v] of Object.entries(s.errors)) errors.inc({ kind }, v);
    registered.set(s.api.registrationFresh ? 1 : 0);
    wsUp.set(s.api.websocket === 'up' ? 1 : 0);
    ingestKind.reset();
    for (const k of ['broadcaster', 'relay', 'none']) ingestKind.set({ kind: k }, s.ingest === k ? 1 : 0);
    relayPulling.reset();
    if (s.relay) {
      const p = s.relay.pull;
      if (p.state === 'pulling' && p.origin) relayPulling.set({ origin: p.origin }, 1);
      mirror(relayPackets, p.packetsReceived);
      mirror(relayRecovered, p.packetsRecovered);
      mirror(relayReconnects, p.reconnects);
      mirror(relayFailures, p.failures);
      mirror(relaySwitches, p.switches);
      relaySinks.set(s.relay.sinks.active);
      mirror(relaySinksServed, s.relay.sinks.served);
      mirror(relayRefused, s.relay.sinks.refused);
    }
    ivsRefusals.reset();
    ivsWarnings.reset();
    if (s.ivs) {
      for (const [code, n] of Object.entries(s.ivs.refusalsByCode)) ivsRefusals.inc({ code }, n);
      for (const [code, n] of Object.entries(s.ivs.warningsByCode)) ivsWarnings.inc({ code }, n);
      ivsEnforcing.set(s.ivs.enforcing ? 1 : 0);
      mirror(ivsRejoins, s.ivs.refusedReconnects);
    }
  }
  return registry;
}

/** A counter that reads a total someone else keeps: its value at scrape time is that total. */
function mirror(c: Counter, value: number): void {
  c.reset();
  c.inc(value);
}
