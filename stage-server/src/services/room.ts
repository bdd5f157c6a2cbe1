import { StagecastError, type StageArn, type StageId, type StageMediaStats } from '@stagecast/protocol';
import type { MediaHttpRequest, MediaHttpResponse, MediaRole } from './http.js';

/** The media side of one stage, as the StageService sees it. */
export interface Room {
  /** WHIP (role 'whip', the publisher) and WHEP (role 'whep', viewers) requests of this stage. */
  handleHttp(role: MediaRole, req: MediaHttpRequest): Promise<MediaHttpResponse>;
  stats(): StageMediaStats;
  /** Ends the publisher and every viewer session. Idempotent. */
  close(reason: string): Promise<void>;
}

export interface RoomIdentity {
  stageId: StageId;
  stageArn: StageArn;
}

export type RoomFactory = (stage: RoomIdentity) => Room;

/** A stage with no media wired: zeros. */
export class IdleRoom implements Room {
  constructor(private readonly stage: RoomIdentity) {}
  stats(): StageMediaStats {
    return {
      stageId: this.stage.stageId,
      stageArn: this.stage.stageArn,
      publisher: { state: 'offline' },
      viewers: 0,
      bitrateBps: 0,
      packetsReceived: 0,
      bytesReceived: 0,
      keyframesReceived: 0,
      packetsLost: 0,
      keyframeRequestsSent: 0,
      nacksSent: 0,
      packetsRecovered: 0,
      packetsLostForGood: 0,
      packetsSent: 0,
      bytesSent: 0,
      retransmitted: 0,
      nacksUnanswered: 0,
    };
  }
  async handleHttp(): Promise<MediaHttpResponse> {
    const e = new StagecastError('NOT_FOUND', 'this stage server has no media plane');
    return { status: e.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(e.toBody()) };
  }
  async close(): Promise<void> {}
}
