/**
 * Participant token verification against the API Server's JWKS: ES384 signature, expiry, the claims IVS uses,
 * the stage (resource) and the capability. Missing / unverifiable → Unauthorized (401); verified but for another
 * stage or without the capability → Forbidden (403); the key set unreachable → ProviderError (502).
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import {
  Forbidden,
  ParticipantClaimsSchema,
  ProviderError,
  TOKEN_ALG,
  Unauthorized,
  type Capability,
  type ParticipantClaims,
  type StageArn,
} from '@stagecast/protocol';

export interface TokenVerifierOptions {
  jwksUrl: string;
  /** How long a fetched key set is trusted before it is fetched again (jose's cacheMaxAge). */
  cacheMaxAgeMs?: number;
  /** Minimum time between two fetches triggered by an unknown `kid` (key rotation). */
  cooldownMs?: number;
  timeoutMs?: number;
  /** Clock skew tolerated on exp / iat, in seconds. */
  clockToleranceSec?: number;
}

/** A verified participant. */
export type VerifiedParticipant = ParticipantClaims;

export class TokenVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly tolerance: number;

  constructor(opts: TokenVerifierOptions) {
    this.keys = createRemoteJWKSet(new URL(opts.jwksUrl), {
      cacheMaxAge: opts.cacheMaxAgeMs ?? 10 * 60_000,
      cooldownDuration: opts.cooldownMs ?? 30_000,
      timeoutDuration: opts.timeoutMs ?? 5_000,
    });
    this.tolerance = opts.clockToleranceSec ?? 5;
  }

  /** Verifies `token` for `capability` on `stageArn`; throws Unauthorized / Forbidden / ProviderError. */
  async verify(token: string | undefined, stageArn: StageArn, capability: Capability): Promise<VerifiedParticipant> {
    if (!token) throw new Unauthorized('participant token required');
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.keys, { algorithms: [TOKEN_ALG], clockTolerance: this.tolerance }));
    } catch (e) {
      throw mapJoseError(e);
    }
    const claims = ParticipantClaimsSchema.safeParse(payload);
    if (!claims.success) throw new Unauthorized('participant token claims are malformed');
    if (claims.data.resource !== stageArn) throw new Forbidden('participant token is for another stage');
    const allowed =
      capability === 'publish' ? claims.data.capabilities.allow_publish : claims.data.capabilities.allow_subscribe;
    if (!allowed) throw new Forbidden(`participant token does not allow ${capability}`);
    return claims.data;
  }
}

function mapJoseError(e: unknown): Error {
  if (e instanceof joseErrors.JWTExpired) return new Unauthorized('participant token expired');
  if (e instanceof joseErrors.JWKSTimeout) return new ProviderError('token keys unavailable (timeout)', e);
  if (e instanceof joseErrors.JOSEError) {
    // Bad signature, unknown kid, wrong alg, malformed JWT, failed claim checks (nbf, iat): all "not a valid token".
    // An unreachable or broken JWKS endpoint is not the client's fault.
    if (e.code === 'ERR_JWKS_INVALID' || e.code === 'ERR_JOSE_GENERIC') return new ProviderError('token keys unavailable', e);
    return new Unauthorized('participant token not valid');
  }
  // fetch failures (API Server down) surface as plain errors from the JWKS fetch.
  return new ProviderError('token keys unavailable', e);
}
