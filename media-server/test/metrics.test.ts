/** /metrics from a stats snapshot: what an operator's dashboards read. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localStageArn, type MediaLegStats, type MediaServerStats } from '@stagecast/protocol';
import { createMetrics } from '../src/services/metrics.js';

const A = localStageArn('stageA');
const leg = (legId: string, state: MediaLegStats['state'], packetsSent: number): MediaLegStats => ({
  legId,
  stageArn: A,
  state,
  attempts: 1,
  failures: 0,
  packetsSent,
  bytesSent: packetsSent * 1000,
  keyframesSent: 1,
  nacksReceived: 0,
  plisReceived: 0,
  fractionLost: 0,
  cumulativeLost: 0,
  started: true,
});

test('during a leg rotation the stage’s series follow the leg that carries its media, not the newcomer', async () => {
  let legs: MediaLegStats[] = [leg('old', 'connected', 5000), leg('new', 'connecting', 0)];
  const snapshot = () =>
    ({
      publisher: { online: true, bitrateBps: 1, packetsReceived: 1, keyframesReceived: 1, lost: 0 },
      stages: { expected: 1, connected: 1 },
      legs,
      errors: {},
      api: { registrationFresh: true, websocket: 'up' },
    }) as unknown as MediaServerStats;
  const registry = createMetrics(snapshot);
  const read = async () => (await registry.metrics()).split('\n').find((l) => l.startsWith('stagecast_media_leg_packets_sent_total{'));
  assert.equal(await read(), 'stagecast_media_leg_packets_sent_total{stage="stageA"} 5000');
  legs = [leg('new', 'connecting', 0), leg('old', 'connected', 5100)];
  assert.equal(await read(), 'stagecast_media_leg_packets_sent_total{stage="stageA"} 5100', 'whatever the order the legs are listed in');
  legs = [leg('old', 'closed', 5200), leg('new', 'connected', 40)];
  assert.equal(await read(), 'stagecast_media_leg_packets_sent_total{stage="stageA"} 40', 'the new leg once it carries the stage');
  assert.match(await registry.metrics(), /stagecast_media_legs\{state="connected"\} 1/);
});

test('monotonic figures are Prometheus counters named *_total; levels stay gauges', async () => {
  const snapshot = () =>
    ({
      publisher: { online: true, bitrateBps: 1, packetsReceived: 7, keyframesReceived: 2, lost: 1 },
      stages: { expected: 1, connected: 1 },
      legs: [leg('l', 'connected', 9)],
      errors: { legFailures: 3 },
      api: { registrationFresh: true, websocket: 'up' },
      ivs: { enforcing: true, refusalsByCode: {}, warningsByCode: {}, refusedReconnects: 4 },
    }) as unknown as MediaServerStats;
  const text = await createMetrics(snapshot).metrics();
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  for (const [name, type] of types) {
    if (name.startsWith('stagecast_media_process_') || name.startsWith('stagecast_media_nodejs_')) continue;
    assert.equal(type === 'counter', name.endsWith('_total'), `${name} is a ${type}`);
  }
  for (const name of ['publisher_packets_received_total', 'publisher_keyframes_received_total', 'publisher_packets_lost_total', 'leg_packets_sent_total', 'leg_keyframes_sent_total', 'leg_packets_lost_total', 'errors_total', 'ivs_refused_reconnects_total'])
    assert.equal(types.get(`stagecast_media_${name}`), 'counter', name);
  assert.match(text, /stagecast_media_errors_total\{kind="legFailures"\} 3/);
  assert.match(text, /stagecast_media_publisher_packets_received_total 7/);
});
