/**
 * Who may publish into the Media Server: a broadcaster's Bearer token is either the long-lived
 * INGEST_TOKEN (compared in constant time) or an ES384 JWT minted by the API Server
 * (POST /api/media/ingest-token: resource 'stagecast:ingest', allow_publish), verified against the
 * API Server's JWKS with the participant-token verifier every app shares (@stagecast/service): missing,
 * expired or unverifiable → Unauthorized (401); a valid token that does not grant ingest → Forbidden (403);
 * the API Server's keys unreachable → ProviderError (502).
 */
import type { JWTVerifyGetKey } from 'jose';
import { Unauthorized } from '@stagecast/protocol';
import { bearerToken, ParticipantTokenVerifier, secretEquals, tokenHash } from '@stagecast/service';

export const INGEST_RESOURCE = 'stagecast:ingest';

export interface IngestPrincipal {
  kind: 'static' | 'jwt';
  /** SHA-256 of the token: "the same token" means the same broadcaster (OBS reconnecting). Never the token itself. */
  tokenHash: string;
  /** The JWT's participant id (jti), for logs. */
  participantId?: string;
  /** ms epoch; undefined for INGEST_TOKEN. */
  expiresAt?: number;
}

export interface IngestAuthOptions {
  ingestToken?: string;
  /** URL of the API Server's JWKS (API_SERVER_URL + /.well-known/jwks.json). */
  jwksUrl?: string;
  /** Injected key resolver (tests); overrides jwksUrl. */
  keys?: JWTVerifyGetKey;
  jwksTimeoutMs?: number;
  /** Seconds of clock skew tolerated on exp / iat. */
  clockToleranceS?: number;
}

export class IngestAuth {
  private readonly staticToken: string | undefined;
  private readonly verifier: ParticipantTokenVerifier | undefined;

  constructor(o: IngestAuthOptions) {
    this.staticToken = o.ingestToken || undefined;
    this.verifier =
      o.keys || o.jwksUrl
        ? new ParticipantTokenVerifier({
            ...(o.keys ? { keys: o.keys } : { jwksUrl: o.jwksUrl! }),
            timeoutMs: o.jwksTimeoutMs ?? 5000,
            cooldownMs: 5000,
            clockToleranceSec: o.clockToleranceS ?? 5,
          })
        : undefined;
  }

  /** From an Authorization header. Throws Unauthorized / Forbidden / ProviderError (keys unavailable). */
  async authorizeHeader(header: string | string[] | undefined): Promise<IngestPrincipal> {
    return this.verify(bearerToken(header) || undefined);
  }

  async verify(token: string | undefined): Promise<IngestPrincipal> {
    if (!token) throw new Unauthorized('a Bearer token is required');
    if (token.length > 8192) throw new Unauthorized('token not accepted');
    const hash = tokenHash(token);
    if (this.staticToken && secretEquals(token, this.staticToken)) return { kind: 'static', tokenHash: hash };
    if (!this.verifier) throw new Unauthorized('token not accepted');
    const claims = await this.verifier.verify(token, { resource: INGEST_RESOURCE, capability: 'publish', label: 'ingest' });
    return { kind: 'jwt', tokenHash: hash, participantId: claims.jti, expiresAt: claims.exp * 1000 };
  }
}
