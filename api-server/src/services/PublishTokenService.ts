/** PUBLISH tokens: one per Media Server leg into a stage, and the broadcaster's ingest token for the Media Server. */
import { NotFound, type ParticipantId, type StageArn } from '@stagecast/protocol';
import type { StageTokenIssuer } from '../providers/token-issuer.js';
import type { Store } from '../store/store.js';
import { INGEST_RESOURCE, INGEST_TOPIC, newParticipantId, ParticipantToken, PUBLISH_GRANT, type TokenService } from '../tokens.js';

export class PublishTokenService {
  constructor(
    private readonly d: {
      store: Store;
      /** Signs the broadcaster's ingest token (always ours: the Media Server verifies it). */
      tokens: TokenService;
      /** Mints stage tokens the way the provider wants them (ours, IVS's, a WHIP destination's own). */
      issuer: StageTokenIssuer;
      publishTokenTtlSeconds: number;
      mediaServerUrl: string;
      /** Re-reads a stage's endpoints at the provider (IVS) when a leg's WHIP POST failed there. */
      endpoints?: { afterWhipFailure(arn: StageArn): Promise<void> };
      now?: () => number;
    },
  ) {}

  /**
   * A PUBLISH token for one active stage (the Media Server's WHIP leg). `whipUrl` is the stage's stored endpoint
   * (IVS: `endpoints.whip`, whose 307s the Media Server follows; whip: the destination's URL); `token` may be ''.
   * `whipFailed`: the caller's last WHIP POST into this stage failed at the endpoint — the endpoints are read again
   * at the provider first (IVS), so the retry goes where the stage is now.
   */
  async stageToken(
    stageArn: StageArn,
    serverId?: string,
    opts: { whipFailed?: boolean } = {},
  ): Promise<{ token: string; whipUrl: string; participantId: ParticipantId; expiresAt: Date }> {
    if (opts.whipFailed && this.d.endpoints) await this.d.endpoints.afterWhipFailure(stageArn);
    const stage = await this.d.store.getStage(stageArn);
    if (!stage || stage.state !== 'active') throw new NotFound('no such active stage');
    const issued = await this.d.issuer.issue({
      stage,
      participantId: newParticipantId('pub_'),
      grant: PUBLISH_GRANT,
      ...(serverId !== undefined ? { label: serverId } : {}),
      ttlSeconds: this.d.publishTokenTtlSeconds,
      nowMs: (this.d.now ?? Date.now)(),
    });
    return { token: issued.token, whipUrl: issued.whipUrl, participantId: issued.participantId, expiresAt: issued.expiresAt };
  }

  /** The broadcaster's token for the Media Server's WHIP ingest (verified there against our JWKS). */
  async ingestToken(): Promise<{ token: string; whipUrl: string; expiresAt: Date }> {
    const whipUrl = `${this.d.mediaServerUrl}/whip`;
    const t = new ParticipantToken(newParticipantId('ingest_'), { resource: INGEST_RESOURCE, topic: INGEST_TOPIC, whipUrl }, this.d.publishTokenTtlSeconds).withGrant(
      PUBLISH_GRANT,
    );
    const signed = await this.d.tokens.sign(t, (this.d.now ?? Date.now)());
    return { token: signed.token, whipUrl, expiresAt: signed.expiresAt };
  }
}
