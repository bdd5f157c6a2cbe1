/** GET / : the seed's indicators, assembled from the services (plain data in, plain data out). */
import type { MediaLegStats, MediaServerStats, StreamReport } from '@stagecast/protocol';
import { checkIvsRules, type H264StreamReport, type RouterStats } from '@stagecast/rtc';
import type { APIClientStatus } from './APIClientService.js';
import type { IngestStats } from './IngestService.js';
import type { RelayPullStats } from './RelayPuller.js';
import type { RelaySinkStats } from './RelaySinks.js';
import type { StageManagerStats } from './StageManager.js';

export function streamReport(h: H264StreamReport | undefined): StreamReport | null {
  if (!h || h.frames === 0) return null;
  const r: StreamReport = {
    bFrames: h.bFramesSeen,
    frames: h.frames,
    keyframes: h.keyframes,
    bitrateBps: h.bitrateBps,
    ivsViolations: checkIvsRules(h).map((v) => ({ code: v.code, message: v.message })),
  };
  if (h.profile !== undefined) r.profile = h.profile;
  if (h.level !== undefined) r.level = h.level;
  if (h.width !== undefined) r.width = h.width;
  if (h.height !== undefined) r.height = h.height;
  if (h.keyframeIntervalMs !== undefined) r.keyframeIntervalMs = h.keyframeIntervalMs;
  if (h.frameRate !== undefined) r.frameRate = h.frameRate;
  return r;
}

export function buildStats(i: {
  serverId: string;
  uptimeSeconds: number;
  router: RouterStats;
  stages: StageManagerStats;
  api: APIClientStatus;
  ingest: IngestStats;
  feed?: 'broadcaster' | 'relay' | 'none';
  relay?: { pull: RelayPullStats; sinks: RelaySinkStats };
}): MediaServerStats {
  const src = i.router.source;
  const publisher: MediaServerStats['publisher'] = {
    online: i.stages.publisherOnline,
    bitrateBps: src.bitrateBps,
    packetsReceived: src.packetsReceived,
    bytesReceived: src.bytesReceived,
    keyframesReceived: src.keyframesReceived,
    lost: src.lost,
    keyframeRequestsSent: i.router.keyframeRequestsSent,
    nacksSent: src.nacksSent,
    packetsRecovered: src.recovered,
    packetsLostForGood: src.lostForGood,
    rtxReceived: src.rtxReceived,
  };
  if (i.ingest.sessionId) publisher.sessionId = i.ingest.sessionId;
  if (i.stages.publisherSince) publisher.since = i.stages.publisherSince;
  if (src.lastKeyframeAt !== undefined) publisher.lastKeyframeAt = new Date(src.lastKeyframeAt).toISOString();

  const legs = i.stages.legs.map((l): MediaLegStats => {
    const k = l.sink;
    const out: MediaLegStats = {
      legId: l.legId,
      stageArn: l.stageArn,
      state: l.state,
      attempts: l.attempts,
      failures: l.failures,
      packetsSent: k?.packetsSent ?? 0,
      bytesSent: k?.bytesSent ?? 0,
      keyframesSent: k?.keyframesSent ?? 0,
      nacksReceived: k?.nacksReceived ?? 0,
      retransmitted: k?.retransmitted ?? 0,
      plisReceived: k?.plisReceived ?? 0,
      fractionLost: k?.fractionLost ?? 0,
      cumulativeLost: k?.cumulativeLost ?? 0,
      started: k?.started ?? false,
    };
    if (l.participantId) out.participantId = l.participantId;
    if (l.connectedAt) out.connectedAt = l.connectedAt;
    if (l.rotateAt) out.rotateAt = l.rotateAt;
    if (l.lastError) out.lastError = l.lastError;
    if (l.rttMs !== undefined) out.rttMs = l.rttMs;
    return out;
  });

  const api: MediaServerStats['api'] = {
    registered: i.api.registered,
    registrationFresh: i.api.registrationFresh,
    heartbeat: i.api.heartbeat,
    heartbeatIntervalMs: i.api.heartbeatIntervalMs,
    websocket: i.api.websocket,
    wsReconnects: i.api.wsReconnects,
  };
  if (i.api.lastHeartbeatAt) api.lastHeartbeatAt = i.api.lastHeartbeatAt;
  if (i.stages.lastSyncAt) api.lastSyncAt = i.stages.lastSyncAt;

  const out: MediaServerStats = {
    service: 'media-server',
    serverId: i.serverId,
    uptimeSeconds: i.uptimeSeconds,
    publisher,
    stream: streamReport(i.router.h264),
    stages: { expected: i.stages.stagesExpected, connected: i.stages.stagesConnected },
    legs,
    api,
    errors: {
      legFailures: i.stages.legFailures,
      syncFailures: i.stages.syncFailures,
      heartbeatFailures: i.api.heartbeatFailures,
      apiRequestErrors: i.api.requestErrors,
      ingestRefused: i.ingest.refused,
      ingestConflicts: i.ingest.conflicts,
    },
  };
  if (i.ingest.ivs) out.ivs = i.ingest.ivs;
  if (i.feed) out.ingest = i.feed;
  if (i.relay) {
    const { pull, sinks } = i.relay;
    out.relay = { pull: { ...pull, packetsRecovered: i.feed === 'relay' ? src.recovered : 0 }, sinks };
  }
  return out;
}
