/**
 * Prometheus metrics on the server's own Registry. Per-stage series are read from the rooms' stats at scrape time
 * (labelled by stage id; a deleted stage's series disappear), so the packet path only keeps plain counters.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { StageMediaStats } from '@stagecast/protocol';
import type { ParticipantReporterStats } from './ParticipantReporter.js';

export interface MetricsSources {
  stages: () => StageMediaStats[];
  reporter: () => ParticipantReporterStats;
}

export interface Metrics {
  registry: Registry;
  contentType: string;
  /** One consistent snapshot of the stages per scrape. */
  scrape(): Promise<string>;
}

export function createMetrics(src: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'stagecast_stage_server_' });
  const L = ['stage_id'] as const;

  // One snapshot per scrape, shared by every per-stage collector.
  let snapshot: StageMediaStats[] = [];
  const current = () => snapshot;

  const gauge = (name: string, help: string, pick: (s: StageMediaStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: L,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of current()) this.set({ stage_id: s.stageId }, pick(s));
      },
    });
  const counter = (name: string, help: string, pick: (s: StageMediaStats) => number) =>
    new Counter({
      name,
      help,
      labelNames: L,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of current()) this.inc({ stage_id: s.stageId }, pick(s));
      },
    });

  new Gauge({
    name: 'stagecast_stages',
    help: 'Stages held by this stage server',
    registers: [registry],
    collect() {
      this.set(current().length);
    },
  });
  gauge('stagecast_stage_publisher_connected', '1 when the stage has a connected publisher', (s) =>
    s.publisher.state === 'connected' ? 1 : 0,
  );
  gauge('stagecast_stage_viewers', 'WHEP viewers with a live session', (s) => s.viewers);
  gauge('stagecast_stage_bitrate_bps', 'Publisher bitrate in bits per second', (s) => s.bitrateBps);
  counter('stagecast_stage_packets_received_total', 'RTP packets received from the publisher', (s) => s.packetsReceived);
  counter('stagecast_stage_publisher_handovers_total', 'Publisher sessions that took the slot from a live one, make-before-break (a stage moved between Media Servers, OBS reconnected)', (s) => s.publisherHandovers ?? 0);
  counter('stagecast_stage_bytes_received_total', 'RTP bytes received from the publisher', (s) => s.bytesReceived);
  counter('stagecast_stage_keyframes_received_total', 'Keyframes received from the publisher', (s) => s.keyframesReceived);
  counter('stagecast_stage_packets_lost_total', 'Publisher RTP packets lost', (s) => s.packetsLost);
  counter('stagecast_stage_keyframe_requests_total', 'Keyframe requests (PLI/FIR) sent to the publisher', (s) => s.keyframeRequestsSent);
  counter('stagecast_stage_nacks_sent_total', 'NACK entries sent to the publisher (one per packet asked for)', (s) => s.nacksSent);
  counter('stagecast_stage_packets_recovered_total', 'Publisher packets recovered after a NACK', (s) => s.packetsRecovered);
  counter('stagecast_stage_packets_lost_for_good_total', 'Publisher packets never recovered (given up on)', (s) => s.packetsLostForGood);
  counter('stagecast_stage_retransmitted_total', 'Packets resent to viewers that NACKed them', (s) => s.retransmitted);
  counter('stagecast_stage_packets_sent_total', 'RTP packets sent to viewers', (s) => s.packetsSent);
  counter('stagecast_stage_bytes_sent_total', 'RTP bytes sent to viewers', (s) => s.bytesSent);

  const rep = (name: string, help: string, pick: (r: ParticipantReporterStats) => number, kind: 'gauge' | 'counter') =>
    kind === 'gauge'
      ? new Gauge({ name, help, registers: [registry], collect() { this.set(pick(src.reporter())); } })
      : new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(pick(src.reporter())); } });
  rep('stagecast_participant_events_queued', 'Participant events waiting for the API Server', (r) => r.queued, 'gauge');
  rep('stagecast_participant_events_sent_total', 'Participant events delivered to the API Server', (r) => r.sent, 'counter');
  rep('stagecast_participant_events_dropped_total', 'Participant events dropped (queue full or refused)', (r) => r.dropped, 'counter');

  return {
    registry,
    contentType: registry.contentType,
    scrape() {
      snapshot = src.stages();
      return registry.metrics();
    },
  };
}
