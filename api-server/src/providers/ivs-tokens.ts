/**
 * Participant tokens for IVS stages, two ways:
 * - IvsApiTokenIssuer: CreateParticipantToken (IVS signs; 50 TPS quota of its own, paced here);
 * - IvsSelfSignedTokenIssuer: ES384 JWTs signed with our private key whose public half was imported into IVS
 *   (ImportPublicKey): header {alg:ES384, typ:JWT, kid:<public-key ARN>}, IVS's claim set. No call, no quota.
 * Either way the IVS participant's userId is OUR participant id (viewer id / pub_…), so ListParticipants maps
 * back to our seats; the client's own label goes in the `label` attribute.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { CreateParticipantTokenCommand, type IVSRealTimeClient } from '@aws-sdk/client-ivs-realtime';
import { SignJWT } from 'jose';
import { ParticipantIdSchema, ProviderError, TOKEN_ALG } from '@stagecast/protocol';
import { ParticipantToken } from '../tokens.js';
import { classifyIvsError } from './ivs.js';
import type { Pacer } from './pacing.js';
import type { IssuedToken, IssueRequest, StageTokenIssuer } from './token-issuer.js';

/** CreateParticipantToken's duration range, in minutes (1 min – 14 days); self-signed `exp` has the same ceiling. */
export const IVS_MAX_TOKEN_SECONDS = 20_160 * 60;

function attributesOf(req: IssueRequest): Record<string, string> | undefined {
  // IVS caps attributes at 1 KB in all; the label is free text from the client.
  return req.label !== undefined ? { label: req.label.slice(0, 128) } : undefined;
}

export class IvsApiTokenIssuer implements StageTokenIssuer {
  readonly kind = 'ivs-api';
  constructor(
    private readonly client: IVSRealTimeClient,
    /** At IVS_TOKEN_TPS: CreateParticipantToken has its own quota, apart from the stage calls. */
    private readonly pacer: Pacer,
  ) {}

  async issue(req: IssueRequest): Promise<IssuedToken> {
    const duration = Math.min(20_160, Math.max(1, Math.ceil(req.ttlSeconds / 60)));
    const attributes = attributesOf(req);
    let out;
    try {
      out = await this.pacer.call('CreateParticipantToken', async () => {
        try {
          return await this.client.send(
            new CreateParticipantTokenCommand({
              stageArn: req.stage.arn,
              userId: req.participantId,
              capabilities: [req.grant.publish ? 'PUBLISH' : 'SUBSCRIBE'],
              duration,
              ...(attributes ? { attributes } : {}),
            }),
          );
        } catch (err) {
          throw classifyIvsError('CreateParticipantToken', err);
        }
      });
    } catch (err) {
      throw new ProviderError(`could not get a participant token from IVS: ${(err as Error).message}`, err);
    }
    const pt = out.participantToken;
    const participantId = ParticipantIdSchema.safeParse(pt?.participantId);
    if (!pt?.token || !participantId.success) throw new ProviderError('IVS CreateParticipantToken answered without a token or participant id');
    const expiresAt = pt.expirationTime ? new Date(pt.expirationTime) : new Date(req.nowMs + duration * 60_000);
    return { token: pt.token, participantId: participantId.data, whipUrl: req.stage.whipUrl, expiresAt };
  }
}

export interface SelfSignedOptions {
  /** PEM of the ES384 (P-384) private key. */
  privateKeyPem: string;
  /** The ARN ImportPublicKey returned: the JWT's `kid`. */
  publicKeyArn: string;
  /** `events_url` claim (the stage's endpoints.events: IVS's global events endpoint). */
  eventsUrl: string;
}

export class IvsSelfSignedTokenIssuer implements StageTokenIssuer {
  readonly kind = 'ivs-self-signed';
  private readonly key: KeyObject;
  constructor(private readonly o: SelfSignedOptions) {
    this.key = createPrivateKey(o.privateKeyPem);
  }

  async issue(req: IssueRequest): Promise<IssuedToken> {
    const ttl = Math.min(IVS_MAX_TOKEN_SECONDS, Math.max(60, req.ttlSeconds));
    const t = new ParticipantToken(req.participantId, { resource: req.stage.arn, topic: req.stage.id, whipUrl: req.stage.whipUrl, eventsUrl: this.o.eventsUrl }, ttl)
      .withGrant(req.grant)
      .withUserId(req.participantId)
      .withAttributes(attributesOf(req));
    const claims = t.claims(req.nowMs);
    const token = await new SignJWT({ ...claims }).setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT', kid: this.o.publicKeyArn }).sign(this.key);
    return { token, participantId: req.participantId, whipUrl: req.stage.whipUrl, expiresAt: new Date(claims.exp * 1000) };
  }
}
