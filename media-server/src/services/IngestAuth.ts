/**
 * Who may publish into the Media Server: a broadcaster's Bearer token is either the long-lived
 * INGEST_TOKEN (compared in constant time) or an ES384 JWT minted by the API Server
 * (POST /api/media/ingest-token: resource 'stagecast:ingest', allow_publish), verified against the
 * API Server's JWKS. Missing → Unauthorized (401); expired or unverifiable → Unauthorized (401);
 * a valid token that does not grant ingest → Forbidden (403).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { Forbidden, ParticipantClaimsSchema, ProviderError, TOKEN_ALG, Unauthorized } from '@stagecast/protocol';

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

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function bearerToken(header: string | string[] | undefined): string | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

export class IngestAuth {
  private readonly staticHash: Buffer | undefined;
  private readonly keys: JWTVerifyGetKey | undefined;
  private readonly tolerance: number;

  constructor(o: IngestAuthOptions) {
    this.staticHash = o.ingestToken ? sha256(o.ingestToken) : undefined;
    this.keys = o.keys ?? (o.jwksUrl ? createRemoteJWKSet(new URL(o.jwksUrl), { timeoutDuration: o.jwksTimeoutMs ?? 5000, cooldownDuration: 5000 }) : undefined);
    this.tolerance = o.clockToleranceS ?? 5;
  }

  /** From an Authorization header. Throws Unauthorized / Forbidden / ProviderError (keys unavailable). */
  async authorizeHeader(header: string | string[] | undefined): Promise<IngestPrincipal> {
    return this.verify(bearerToken(header));
  }

  async verify(token: string | undefined): Promise<IngestPrincipal> {
    if (!token) throw new Unauthorized('a Bearer token is required');
    if (token.length > 8192) throw new Unauthorized('token not accepted');
    const hash = sha256(token);
    // Hashing first makes the comparison constant-time whatever the lengths.
    if (this.staticHash && timingSafeEqual(hash, this.staticHash)) return { kind: 'static', tokenHash: hash.toString('hex') };
    if (!this.keys || token.split('.').length !== 3) throw new Unauthorized('token not accepted');
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.keys, { algorithms: [TOKEN_ALG], clockTolerance: this.tolerance }));
    } catch (err) {
      if (keysUnavailable(err)) {
        throw new ProviderError('cannot verify the token now: the API Server keys are unavailable', err);
      }
      if (err instanceof joseErrors.JWTExpired) throw new Unauthorized('token expired');
      throw new Unauthorized('token not accepted');
    }
    const claims = ParticipantClaimsSchema.safeParse(payload);
    if (!claims.success) throw new Forbidden('token is not a participant token');
    if (claims.data.resource !== INGEST_RESOURCE) throw new Forbidden('token is not for ingest');
    if (!claims.data.capabilities.allow_publish) throw new Forbidden('token does not allow publishing');
    return { kind: 'jwt', tokenHash: hash.toString('hex'), participantId: claims.data.jti, expiresAt: claims.data.exp * 1000 };
  }
}

/** The key set could not be fetched (API Server away): not the broadcaster's fault. */
function keysUnavailable(err: unknown): boolean {
  if (err instanceof joseErrors.JWKSTimeout) return true;
  if (err instanceof joseErrors.JOSEError) return err.code === 'ERR_JOSE_GENERIC' && /Key Set/.test(err.message);
  return err instanceof Error; // fetch failed (connection refused, DNS)
}
