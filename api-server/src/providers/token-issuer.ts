/**
 * Participant tokens for a provider's stages, behind one interface: signed by the API Server for local stages,
 * by IVS (CreateParticipantToken) or by our imported IVS key for IVS stages, the destination's own token for WHIP.
 */
import type { ParticipantId, StageArn, StageId } from '@stagecast/protocol';
import { ParticipantToken, type Grant, type TokenService } from '../tokens.js';

export interface TokenTarget {
  arn: StageArn;
  id: StageId;
  /** The stage's stored WHIP endpoint (IVS: `endpoints.whip` from CreateStage/GetStage). */
  whipUrl: string;
}

export interface IssueRequest {
  stage: TokenTarget;
  /** Our id of the participant: the viewer id, or `pub_…` for a Media Server leg. */
  participantId: ParticipantId;
  grant: Grant;
  /** Free label of the client (viewer's userId, Media Server's serverId). */
  label?: string;
  ttlSeconds: number;
  nowMs: number;
}

export interface IssuedToken {
  /** Bearer token; '' when the destination takes none. */
  token: string;
  /** The provider's participant id (IVS's own when it mints the token). */
  participantId: ParticipantId;
  /** Where to send WHIP with it. */
  whipUrl: string;
  expiresAt: Date;
}

export interface StageTokenIssuer {
  readonly kind: string;
  issue(req: IssueRequest): Promise<IssuedToken>;
}

/** Local stages: ES384 JWTs signed by the API Server's own key (verified by the stage server against our JWKS). */
export class LocalTokenIssuer implements StageTokenIssuer {
  readonly kind = 'local';
  constructor(private readonly tokens: TokenService) {}
  async issue(req: IssueRequest): Promise<IssuedToken> {
    const t = new ParticipantToken(req.participantId, { resource: req.stage.arn, topic: req.stage.id, whipUrl: req.stage.whipUrl }, req.ttlSeconds)
      .withGrant(req.grant)
      .withUserId(req.label);
    const signed = await this.tokens.sign(t, req.nowMs);
    return { token: signed.token, participantId: req.participantId, whipUrl: req.stage.whipUrl, expiresAt: signed.expiresAt };
  }
}
