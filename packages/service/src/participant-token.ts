/**
 * Participant tokens (the claims IVS uses, ES384, signed by the API Server) verified one way in every app that takes
 * them: the stage server (publish / subscribe on a stage) and the Media Server (ingest).
 *
 * One mapping of failures: no token, an unverifiable one (bad signature, unknown key, expired, malformed JWT) →
 * Unauthorized (401); a verified token whose claims are not a participant's, or for another resource, or without
 * the capability → Forbidden (403); the key set unreachable or broken → ProviderError (502: not the client's fault).
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { Forbidden, ParticipantClaimsSchema, ProviderError, TOKEN_ALG, Unauthorized, type Capability, type ParticipantClaims } from '@stagecast/protocol';

export interface ParticipantTokenVerifierOptions {
  /** Where the API Server publishes its keys; or `keys` (tests, a local set). */
  jwksUrl?: string;
  keys?: JWTVerifyGetKey;
  /** How long a fetched key set is trusted before it is fetched again (jose's cacheMaxAge). */
  cacheMaxAgeMs?: number;
  /** Minimum time between two fetches triggered by an unknown `kid` (key rotation). */
  cooldownMs?: number;
  timeoutMs?: number;
  /** Clock skew tolerated on exp / iat, in seconds. */
  clockToleranceSec?: number;
}

export interface ParticipantExpectation {
  /** The `resource` claim the token must carry (a stage ARN, or the ingest resource). */
  resource: string;
  capability: Capability;
  /** Names the resource in a refusal ("stage", "ingest"). */
  label?: string;
}

/** Longer than any token we sign; refused before any parsing. */
const MAX_TOKEN_LENGTH = 8192;

export class ParticipantTokenVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly tolerance: number;

  constructor(o: ParticipantTokenVerifierOptions) {
    if (o.keys) this.keys = o.keys;
    else if (o.jwksUrl) {
      this.keys = createRemoteJWKSet(new URL(o.jwksUrl), {
        cacheMaxAge: o.cacheMaxAgeMs ?? 10 * 60_000,
        cooldownDuration: o.cooldownMs ?? 30_000,
        timeoutDuration: o.timeoutMs ?? 5_000,
      });
    } else throw new Error('ParticipantTokenVerifier needs jwksUrl or keys');
    this.tolerance = o.clockToleranceSec ?? 5;
  }

  /** The verified claims; throws Unauthorized / Forbidden / ProviderError. */
  async verify(token: string | undefined, expect: ParticipantExpectation): Promise<ParticipantClaims> {
    if (!token) throw new Unauthorized('participant token required');
    // Not three dot-separated parts: not a JWT, no need to fetch keys to say so.
    if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) throw new Unauthorized('participant token not valid');
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.keys, { algorithms: [TOKEN_ALG], clockTolerance: this.tolerance }));
    } catch (e) {
      throw mapJoseError(e);
    }
    const claims = ParticipantClaimsSchema.safeParse(payload);
    if (!claims.success) throw new Forbidden('not a participant token');
    if (claims.data.resource !== expect.resource) throw new Forbidden(`participant token is not for this ${expect.label ?? 'resource'}`);
    const allowed = expect.capability === 'publish' ? claims.data.capabilities.allow_publish : claims.data.capabilities.allow_subscribe;
    if (!allowed) throw new Forbidden(`participant token does not allow ${expect.capability}`);
    return claims.data;
  }
}

function mapJoseError(e: unknown): Error {
  if (e instanceof joseErrors.JWTExpired) return new Unauthorized('participant token expired');
  if (e instanceof joseErrors.JWKSTimeout) return new ProviderError('token keys unavailable (timeout)', e);
  if (e instanceof joseErrors.JOSEError) {
    // An unreachable or broken JWKS endpoint is not the client's fault.
    if (e.code === 'ERR_JWKS_INVALID' || e.code === 'ERR_JOSE_GENERIC') return new ProviderError('token keys unavailable', e);
    // Bad signature, unknown kid, wrong alg, malformed JWT, failed claim checks (nbf, iat): all "not a valid token".
    return new Unauthorized('participant token not valid');
  }
  // fetch failures (API Server down) surface as plain errors from the JWKS fetch.
  return new ProviderError('token keys unavailable', e);
}
