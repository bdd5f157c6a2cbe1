/**
 * Participant tokens: ES384 JWTs with the claims IVS uses, signed by the API Server (local stages, ingest).
 * IVS stages get theirs from providers/ivs-tokens.ts, WHIP destinations from providers/whip.ts.
 * The signing key is generated once and kept in DATA_DIR (0600); its public half is published as a JWKS.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { ParticipantClaimsSchema, TOKEN_ALG, type ParticipantClaims, type ParticipantId } from '@stagecast/protocol';
import { Es384Signer } from './signer.js';

export interface Grant {
  publish: boolean;
  subscribe: boolean;
}
export const PUBLISH_GRANT: Grant = { publish: true, subscribe: false };
export const SUBSCRIBE_GRANT: Grant = { publish: false, subscribe: true };

/** Resource and topic of the broadcaster's ingest token (verified by the Media Server). */
export const INGEST_RESOURCE = 'stagecast:ingest';
export const INGEST_TOPIC = 'ingest';

export function newParticipantId(prefix: string): ParticipantId {
  return `${prefix}${randomBytes(12).toString('base64url')}` as ParticipantId;
}

/** A typed token builder (like livekit's AccessToken): identity and target first, then exactly one grant. */
export class ParticipantToken {
  private grant?: Grant;
  private userId?: string;
  private attributes?: Record<string, string>;
  constructor(
    readonly participantId: ParticipantId,
    /** eventsUrl: IVS's `events_url` (mandatory in IVS self-signed tokens, unused by local stages). */
    private readonly target: { resource: string; topic: string; whipUrl: string; eventsUrl?: string },
    readonly ttlSeconds: number,
  ) {}
  withGrant(grant: Grant): this {
    if (grant.publish === grant.subscribe) throw new Error('a participant token grants exactly one of publish or subscribe');
    this.grant = grant;
    return this;
  }
  withUserId(userId: string | undefined): this {
    if (userId !== undefined) this.userId = userId;
    return this;
  }
  /** Visible to every participant of the stage (IVS: ≤ 1 KB in all). */
  withAttributes(attributes: Record<string, string> | undefined): this {
    if (attributes !== undefined) this.attributes = attributes;
    return this;
  }
  claims(nowMs: number): ParticipantClaims {
    if (!this.grant) throw new Error('token has no grant');
    const iat = Math.floor(nowMs / 1000);
    return ParticipantClaimsSchema.parse({
      exp: iat + this.ttlSeconds,
      iat,
      jti: this.participantId,
      resource: this.target.resource,
      topic: this.target.topic,
      whip_url: this.target.whipUrl,
      ...(this.target.eventsUrl !== undefined ? { events_url: this.target.eventsUrl } : {}),
      capabilities: { allow_publish: this.grant.publish, allow_subscribe: this.grant.subscribe },
      version: '1.0',
      ...(this.userId !== undefined ? { user_id: this.userId } : {}),
      ...(this.attributes !== undefined ? { attributes: this.attributes } : {}),
    });
  }
}

export interface SignedToken {
  token: string;
  expiresAt: Date;
  claims: ParticipantClaims;
}

const b64url = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

export class TokenService {
  /** The JWS protected header, encoded once: every token has the same. */
  private readonly header: string;
  private constructor(
    private readonly signer: Es384Signer,
    private readonly publicJwk: JWK & { kid: string },
  ) {
    this.header = b64url(JSON.stringify({ alg: TOKEN_ALG, kid: publicJwk.kid, typ: 'JWT' }));
  }

  /** Loads DATA_DIR/signing-key.json, or generates and persists a new P-384 key. */
  static async open(dataDir: string): Promise<TokenService> {
    mkdirSync(dataDir, { recursive: true });
    const file = join(dataDir, 'signing-key.json');
    let jwk: JWK;
    if (existsSync(file)) {
      jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    } else {
      const { privateKey } = await generateKeyPair(TOKEN_ALG, { extractable: true });
      jwk = await exportJWK(privateKey);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(jwk), { mode: 0o600 });
      renameSync(tmp, file);
    }
    chmodSync(file, 0o600);
    const { d: _d, ...pub } = jwk;
    const kid = await calculateJwkThumbprint(pub, 'sha256');
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-384' || !jwk.d) throw new Error(`${file} is not a P-384 private key (${TOKEN_ALG})`);
    return new TokenService(new Es384Signer(jwk as Record<string, unknown>), { ...pub, kid, alg: TOKEN_ALG, use: 'sig' });
  }

  get kid(): string {
    return this.publicJwk.kid;
  }

  jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  /** A compact JWS (header.claims.signature), signed off the event loop (signer.ts). */
  async sign(t: ParticipantToken, nowMs = Date.now()): Promise<SignedToken> {
    const claims = t.claims(nowMs);
    const input = `${this.header}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${await this.signer.sign(input)}`;
    return { token, expiresAt: new Date(claims.exp * 1000), claims };
  }

  /** Ends the signing worker (shutdown). */
  close(): Promise<void> {
    return this.signer.close();
  }
}
