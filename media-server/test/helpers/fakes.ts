/** Fakes for the transport ports and the API client, around a REAL Router. */
import { EventEmitter } from 'node:events';
import { localStageArn, stageIdOf, type Origin, type StageArn, type StagesResponse, type StageSummary, type TokenResponse } from '@stagecast/protocol';
import type { MediaKind, SourceParams, SourcePort } from '@stagecast/rtc';
import { FakeSinkPort, H264, OPUS } from '@stagecast/rtc/testing';
import type { IngestSession, LegConnection, LegConnectionState, LegConnectOptions, LegConnector } from '../../src/media/ports.js';
import type { APIClientEvents } from '../../src/services/APIClientService.js';

export { localStageArn };

/** A WHIP leg that connects when told to (or at once, asynchronously, in 'auto' mode). */
export class FakeLegConnection extends EventEmitter implements LegConnection {
  readonly sinkPort: FakeSinkPort;
  state: LegConnectionState = 'connecting';
  stopped = false;
  stoppedAt = NaN;
  constructor(readonly opts: LegConnectOptions) {
    super();
    this.sinkPort = new FakeSinkPort(opts.id, { audio: { ...OPUS, ssrc: 1111 }, video: { ...H264, ssrc: 2222, payloadType: 102 } });
  }
  setState(s: LegConnectionState): void {
    this.state = s;
    this.emit('state', s);
  }
  rttMs(): number {
    return 12;
  }
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stoppedAt = Date.now();
    this.state = 'closed';
  }
}

export interface FakeConnector {
  connect: LegConnector;
  conns: FakeLegConnection[];
  /** Every connect call, including failed ones. */
  calls: LegConnectOptions[];
  /** The next n calls throw a WhipHttpError-like error with this status. */
  failNext(n: number, status?: number): void;
  /** 'auto': connect right after the 201; 'manual': stay connecting until setState('connected'). */
  mode: 'auto' | 'manual';
  live(stageArn: StageArn): FakeLegConnection[];
  /** The next connect call waits (its POST "in flight") until the returned function is called. */
  holdNext(): () => void;
}

export function fakeConnector(): FakeConnector {
  let failures = 0;
  let failStatus = 503;
  let hold: Promise<void> | undefined;
  const f: FakeConnector = {
    conns: [],
    calls: [],
    mode: 'auto',
    failNext(n, status = 503) {
      failures = n;
      failStatus = status;
    },
    live(stageArn) {
      const id = stageIdOf(stageArn);
      return f.conns.filter((c) => !c.stopped && c.opts.whipUrl.includes(`/${id}/`));
    },
    holdNext() {
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      return release;
    },
    async connect(o) {
      f.calls.push(o);
      await Promise.resolve();
      if (hold) {
        const h = hold;
        hold = undefined;
        await h;
      }
      if (failures > 0) {
        failures--;
        throw Object.assign(new Error(`WHIP ${failStatus}`), { status: failStatus });
      }
      const c = new FakeLegConnection(o);
      f.conns.push(c);
      if (f.mode === 'auto') setImmediate(() => !c.stopped && c.setState('connected'));
      return c;
    },
  };
  return f;
}

/** The API client as the StageManager sees it. */
export class FakeStageApi extends EventEmitter<APIClientEvents> {
  stages = new Set<StageArn>();
  tokens = 0;
  down = false;
  tokenTtlMs = 3_600_000;
  /** Every token request, with whether it reported a failed WHIP POST. */
  tokenRequests: { arn: StageArn; whipFailed: boolean }[] = [];
  /** Pool mode: the stage list names owners (from `assignments`) and the origin, as an API Server that assigns stages. */
  pool = false;
  assignments = new Map<StageArn, { serverId: string | null; previous?: string | null }>();
  origin: Origin | null = null;
  /** Token requests for a stage not assigned to `tokenServerId` answer 409 (pool mode). */
  tokenServerId = 'me';
  async getStages(): Promise<StagesResponse> {
    await Promise.resolve();
    if (this.down) throw new Error('API Server unreachable');
    const stages = [...this.stages].map((a) => {
      const base = { stageArn: a, stageId: stageIdOf(a), viewerCount: 0 } as StageSummary;
      if (!this.pool) return base;
      const x = this.assignments.get(a);
      return { ...base, mediaServerId: (x?.serverId ?? null) as StageSummary['mediaServerId'], previousMediaServerId: (x?.previous ?? null) as StageSummary['mediaServerId'] };
    });
    return this.pool ? { stages, origin: this.origin } : { stages };
  }
  assigned(arn: StageArn, serverId: string | null, previous: string | null = null): void {
    this.assignments.set(arn, { serverId, previous });
    this.emit('stage_assigned', { stageArn: arn, serverId: serverId as never, previousServerId: previous as never, timestamp: new Date().toISOString() });
  }
  async getStageToken(arn: StageArn, opts: { whipFailed?: boolean } = {}): Promise<TokenResponse> {
    this.tokenRequests.push({ arn, whipFailed: opts.whipFailed === true });
    await Promise.resolve();
    if (this.down) throw new Error('API Server unreachable');
    const a = this.assignments.get(arn);
    if (this.pool && a?.serverId !== this.tokenServerId && a?.previous !== this.tokenServerId) {
      throw Object.assign(new Error('this stage is assigned to another media server'), { status: 409 });
    }
    this.tokens++;
    return {
      token: `tok-${this.tokens}`,
      whipUrl: `http://127.0.0.1:9/stages/${stageIdOf(arn)}/whip`,
      participantId: `pub_${this.tokens}` as TokenResponse['participantId'],
      expiresAt: new Date(Date.now() + this.tokenTtlMs).toISOString(),
    };
  }
  created(arn: StageArn): void {
    this.stages.add(arn);
    this.emit('stage_created', { stageArn: arn, timestamp: new Date().toISOString() });
  }
  deleted(arn: StageArn): void {
    this.stages.delete(arn);
    this.emit('stage_deleted', { stageArn: arn, timestamp: new Date().toISOString() });
  }
}

/** A broadcaster session as the WhipEndpoint would hand it over. */
export class FakeIngestSession extends EventEmitter implements IngestSession {
  static n = 0;
  readonly id = `sess${++FakeIngestSession.n}`;
  readonly params: SourceParams = { audio: { ...OPUS }, video: { ...H264 } };
  readonly rtcpToPublisher: Uint8Array[] = [];
  readonly sourcePort: SourcePort = { sendRtcp: (p) => this.rtcpToPublisher.push(p.slice()) };
  closed = false;
  private rtp: ((kind: MediaKind, p: Uint8Array) => void) | undefined;
  private rtcp: ((p: Uint8Array) => void) | undefined;
  onRtp(fn: (kind: MediaKind, p: Uint8Array) => void): void {
    this.rtp = fn;
  }
  onRtcp(fn: (p: Uint8Array) => void): void {
    this.rtcp = fn;
  }
  deliver(kind: MediaKind, p: Uint8Array): void {
    this.rtp?.(kind, p);
  }
  deliverRtcp(p: Uint8Array): void {
    this.rtcp?.(p);
  }
  close(reason = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    this.rtp = undefined;
    this.emit('closed', reason);
    this.removeAllListeners();
  }
}
