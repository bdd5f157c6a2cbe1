/**
 * Amazon IVS Real-Time's control API, mocked with aws-sdk-client-mock (the only mocked part): a small stateful
 * fake — stages with tags and endpoints, paginated ListStages, participant tokens, connected participants — that
 * records every call with its time, and can fail the next calls of an operation with a given AWS error.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateParticipantTokenCommand,
  CreateStageCommand,
  DeleteStageCommand,
  DisconnectParticipantCommand,
  GetStageCommand,
  IVSRealTimeClient,
  ListParticipantsCommand,
  ListStagesCommand,
  type ParticipantSummary,
  type Stage,
} from '@aws-sdk/client-ivs-realtime';
import { mockClient } from 'aws-sdk-client-mock';

export const REGION = 'us-east-1';
export const ACCOUNT = '123456789012';

export interface IvsCall {
  op: string;
  at: number;
  input: Record<string, any>;
}

/** An error shaped as the SDK throws it (name, $fault, $metadata). */
export function awsError(name: string, message = name, status = 400): Error {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

export class FakeIvs {
  readonly stages = new Map<string, Stage>();
  readonly calls: IvsCall[] = [];
  /** Participants CONNECTED per stage ARN (the session is the stage's activeSessionId). */
  readonly participants = new Map<string, ParticipantSummary[]>();
  /** ListStages page size cap (smaller than maxResults, to exercise pagination). */
  pageSize = 2;
  private failures = new Map<string, Error[]>();
  private readonly mock = mockClient(IVSRealTimeClient);
  private tokenSeq = 0;

  constructor() {
    const m = this.mock;
    m.on(CreateStageCommand).callsFake((input) =>
      this.handle('CreateStage', input, () => {
        const id = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x');
        const stage = this.addStage(id, { name: input.name, tags: input.tags ?? {} });
        return { stage, participantTokens: [] };
      }),
    );
    m.on(GetStageCommand).callsFake((input) =>
      this.handle('GetStage', input, () => {
        const stage = this.stages.get(input.arn);
        if (!stage) throw awsError('ResourceNotFoundException', 'stage not found', 404);
        return { stage };
      }),
    );
    m.on(DeleteStageCommand).callsFake((input) =>
      this.handle('DeleteStage', input, () => {
        if (!this.stages.delete(input.arn)) throw awsError('ResourceNotFoundException', 'stage not found', 404);
        return {};
      }),
    );
    m.on(ListStagesCommand).callsFake((input) =>
      this.handle('ListStages', input, () => {
        const all = [...this.stages.values()];
        const start = input.nextToken ? Number(input.nextToken) : 0;
        const size = Math.min(input.maxResults ?? 50, this.pageSize);
        const page = all.slice(start, start + size).map(({ arn, name, activeSessionId, tags }) => ({ arn, name, activeSessionId, tags }));
        return { stages: page, ...(start + size < all.length ? { nextToken: String(start + size) } : {}) };
      }),
    );
    m.on(CreateParticipantTokenCommand).callsFake((input) =>
      this.handle('CreateParticipantToken', input, () => {
        if (!this.stages.has(input.stageArn)) throw awsError('ResourceNotFoundException', 'stage not found', 404);
        const n = ++this.tokenSeq;
        return {
          participantToken: {
            participantId: `ivsP${n}`,
            token: `ivs-issued-token-${n}`,
            userId: input.userId,
            capabilities: input.capabilities,
            duration: input.duration,
            expirationTime: new Date(Date.now() + (input.duration ?? 720) * 60_000),
          },
        };
      }),
    );
    m.on(ListParticipantsCommand).callsFake((input) =>
      this.handle('ListParticipants', input, () => {
        const stage = this.stages.get(input.stageArn);
        if (!stage) throw awsError('ResourceNotFoundException', 'stage not found', 404);
        const list = stage.activeSessionId === input.sessionId ? (this.participants.get(input.stageArn) ?? []) : [];
        const start = input.nextToken ? Number(input.nextToken) : 0;
        const size = Math.min(input.maxResults ?? 50, this.pageSize);
        return { participants: list.slice(start, start + size), ...(start + size < list.length ? { nextToken: String(start + size) } : {}) };
      }),
    );
    this.installDisconnect();
  }

  private installDisconnect(): void {
    this.mock.on(DisconnectParticipantCommand).callsFake((input) =>
      this.handle('DisconnectParticipant', input, () => {
        if (!this.stages.has(input.stageArn)) throw awsError('ResourceNotFoundException', 'stage not found', 404);
        const list = this.participants.get(input.stageArn) ?? [];
        this.participants.set(input.stageArn, list.filter((p) => p.participantId !== input.participantId));
        return {};
      }),
    );
  }

  /** A stage as IVS holds it (e.g. one made by a create whose answer never reached our store). */
  addStage(id: string, o: { name?: string; tags?: Record<string, string>; activeSessionId?: string; whip?: boolean }): Stage {
    const arn = `arn:aws:ivs:${REGION}:${ACCOUNT}:stage/${id}`;
    const stage: Stage = {
      arn,
      name: o.name ?? '',
      activeSessionId: o.activeSessionId ?? '',
      tags: o.tags ?? {},
      endpoints: {
        events: 'wss://global.events.live-video.net',
        ...(o.whip === false ? {} : { whip: `https://${id.toLowerCase()}.global-bm.whip.live-video.net` }),
        rtmp: `rtmp://${id}.global-contribute.live-video.net/app/`,
        rtmps: `rtmps://${id}.global-contribute.live-video.net:443/app/`,
      },
    };
    this.stages.set(arn, stage);
    return stage;
  }

  /** The next `n` calls of `op` fail with `err()` (after being recorded). */
  failNext(op: string, n: number, err: () => Error): void {
    const list = this.failures.get(op) ?? [];
    for (let i = 0; i < n; i++) list.push(err());
    this.failures.set(op, list);
  }

  callsOf(op: string): IvsCall[] {
    return this.calls.filter((c) => c.op === op);
  }

  /** The most calls of the given operations that fall in any window of `windowMs`. */
  maxInWindow(ops: string[], windowMs = 1000): number {
    const t = this.calls.filter((c) => ops.includes(c.op)).map((c) => c.at);
    let max = 0;
    for (let i = 0; i < t.length; i++) {
      let n = 0;
      for (let j = i; j < t.length && t[j]! - t[i]! < windowMs; j++) n++;
      max = Math.max(max, n);
    }
    return max;
  }

  restore(): void {
    this.mock.restore();
  }

  private async handle(op: string, input: Record<string, any>, fn: () => unknown): Promise<unknown> {
    this.calls.push({ op, at: performance.now(), input });
    const fail = this.failures.get(op)?.shift();
    if (fail) throw fail;
    return fn();
  }
}

export const STAGE_OPS = ['CreateStage', 'DeleteStage', 'GetStage', 'ListStages', 'ListParticipants'];
