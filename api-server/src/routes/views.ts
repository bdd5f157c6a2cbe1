/** How store records look on the wire: one mapping per record, shared by the routes that return them. */
import type { MediaServerInfo, PublisherReport, ScalingEvent, StageInfo, StageServerInfo } from '@stagecast/protocol';
import type { StageServerStatus } from '../services/StageServerPool.js';
import type { MediaServerRecord, ScalingEventRecord, StageWithCounts } from '../store/store.js';
import { iso } from './common.js';

export const stageView = (st: StageWithCounts): StageInfo => ({
  stageArn: st.arn,
  stageId: st.id,
  name: st.name,
  state: st.state,
  capacity: st.capacity,
  viewers: st.viewers,
  connected: st.connected,
  whipUrl: st.whipUrl,
  playback: st.playback,
  createdAt: iso(st.createdAt),
  emptySince: st.emptySince === null ? null : iso(st.emptySince),
  mediaServerId: st.mediaServerId,
  previousMediaServerId: st.previousMediaServerId,
});

export const mediaServerView = (m: MediaServerRecord, o: { publisher?: PublisherReport; assignedStages?: number } = {}): MediaServerInfo => ({
  serverId: m.id,
  ipAddress: m.ip,
  port: m.port,
  state: m.state,
  registeredAt: iso(m.registeredAt),
  lastHeartbeat: iso(m.lastHeartbeat),
  publisherOnline: m.publisherOnline,
  stages: m.legs,
  ...(m.url !== undefined ? { url: m.url } : {}),
  ...(m.maxLegs !== undefined ? { maxLegs: m.maxLegs } : {}),
  draining: m.draining === true,
  ...(m.ingest !== undefined ? { ingest: m.ingest } : {}),
  ...(o.assignedStages !== undefined ? { assignedStages: o.assignedStages } : {}),
  ...(o.publisher ? { publisher: o.publisher } : {}),
});

export const scalingEventView = (e: ScalingEventRecord): ScalingEvent => ({
  id: e.id,
  at: iso(e.at),
  action: e.action,
  stageArn: e.stageArn,
  reason: e.reason,
  ...(e.detail !== undefined ? { detail: e.detail } : {}),
});

export const stageServerView = (s: StageServerStatus): StageServerInfo => ({
  url: s.url,
  state: s.state,
  since: iso(s.since),
  checkedAt: s.checkedAt === null ? null : iso(s.checkedAt),
  lastError: s.lastError,
  stages: s.stages,
  viewers: s.viewers,
});
