/**
 * The WHIP front door: one URL for the broadcaster (OBS) whatever Media Server holds it. A POST with a valid ingest
 * token is sent on (307) to the origin while it is live and not draining, else to the least-loaded ready Media
 * Server — so after the origin dies, the broadcaster's reconnect lands on a live one. The token is verified the way
 * the Media Server verifies it (INGEST_TOKEN, or our ES384 JWT for 'stagecast:ingest' with publish). A browser's
 * POST is forwarded instead of redirected (see forward()).
 */
import { createLocalJWKSet } from 'jose';
import { CapacityExceeded, MEDIA_ROUTES, ProviderError, StagecastError, Unauthorized, type ServerId } from '@stagecast/protocol';
import { bearerToken, ParticipantTokenVerifier, secretEquals } from '@stagecast/service';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { INGEST_RESOURCE, type TokenService } from '../tokens.js';
import type { MediaServerRegistry } from './MediaServerRegistry.js';

export type FrontDoorOutcome = 'origin' | 'least_loaded';

/** The Media Server's answer to a forwarded POST, with its Location made absolute. */
export interface ForwardedAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Headers of the Media Server's answer that the broadcaster needs (RFC 9725: Location, ETag, Link, Accept-Patch …). */
const FORWARDED_HEADERS = ['content-type', 'location', 'etag', 'link', 'accept-patch', 'retry-after', 'www-authenticate', 'access-control-expose-headers'];

export class WhipFrontDoor {
  private readonly log: Logger;
  private readonly verifier: ParticipantTokenVerifier;

  constructor(
    private readonly d: {
      store: Store;
      registry: MediaServerRegistry;
      tokens: TokenService;
      metrics: Metrics;
      log: Logger;
      /** The long-lived INGEST_TOKEN the Media Servers accept too, if any. */
      ingestToken?: string;
      /** Retry-After of the 503 when no Media Server is ready. */
      retryAfterS: number;
      /** How long a forwarded POST may take at the Media Server. */
      forwardTimeoutMs?: number;
    },
  ) {
    this.log = d.log.child({ component: 'front_door' });
    this.verifier = new ParticipantTokenVerifier({ keys: createLocalJWKSet(d.tokens.jwks()), clockToleranceSec: 5 });
  }

  /** Where the broadcaster's POST goes. Throws Unauthorized / Forbidden (token) or CapacityExceeded (no server). */
  async target(authorization: string | string[] | undefined): Promise<{ location: string; serverId: ServerId; outcome: FrontDoorOutcome }> {
    try {
      await this.authorize(bearerToken(authorization) || undefined);
    } catch (err) {
      const outcome = err instanceof StagecastError && err.code === 'FORBIDDEN' ? 'forbidden' : 'unauthorized';
      this.d.metrics.frontDoor.inc({ outcome });
      throw err;
    }
    const picked = await this.pick();
    if (!picked) {
      this.d.metrics.frontDoor.inc({ outcome: 'unavailable' });
      this.log.warn('front_door.unavailable');
      throw new CapacityExceeded('no Media Server is ready to take the broadcast', this.d.retryAfterS);
    }
    this.d.metrics.frontDoor.inc({ outcome: picked.outcome });
    this.log.info({ serverId: picked.serverId, outcome: picked.outcome }, 'front_door.redirect');
    return { location: `${picked.url}${MEDIA_ROUTES.whip}`, serverId: picked.serverId, outcome: picked.outcome };
  }

  /**
   * Sends the broadcaster's POST on to `location` and returns the Media Server's answer (for browsers: a browser
   * drops the Authorization header when it follows a redirect to another origin, as the Fetch standard says, so
   * the token would never reach the Media Server). The answer's Location is absolute: PATCH and DELETE go to the
   * Media Server directly. Throws ProviderError when it cannot be reached.
   */
  async forward(location: string, req: { body: Buffer; contentType?: string; authorization?: string }): Promise<ForwardedAnswer> {
    let res: Response;
    try {
      res = await fetch(location, {
        method: 'POST',
        headers: { ...(req.contentType ? { 'content-type': req.contentType } : {}), ...(req.authorization ? { authorization: req.authorization } : {}) },
        body: new Uint8Array(req.body),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.d.forwardTimeoutMs ?? 15_000),
      });
    } catch (err) {
      this.d.metrics.frontDoor.inc({ outcome: 'forward_failed' });
      this.log.warn({ location, err: (err as Error).message }, 'front_door.forward_failed');
      throw new ProviderError('the Media Server did not answer', err);
    }
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_HEADERS) {
      const v = res.headers.get(name);
      if (v !== null) headers[name] = name === 'location' ? new URL(v, location).href : v;
    }
    return { status: res.status, headers, body: Buffer.from(await res.arrayBuffer()) };
  }

  private async authorize(token: string | undefined): Promise<void> {
    if (!token) throw new Unauthorized('a Bearer token is required');
    if (token.length > 8192) throw new Unauthorized('token not accepted');
    if (this.d.ingestToken && secretEquals(token, this.d.ingestToken)) return;
    await this.verifier.verify(token, { resource: INGEST_RESOURCE, capability: 'publish', label: 'ingest' });
  }

  /** The origin while it is live and not draining, else the ready server with the fewest stages (ties: by id). */
  private async pick(): Promise<{ serverId: ServerId; url: string; outcome: FrontDoorOutcome } | undefined> {
    const servers = (await this.d.store.listMediaServers()).filter(
      (m) => m.state === 'online' && !m.draining && !this.d.registry.isSocketClosed(m.id),
    );
    const urlOf = (m: (typeof servers)[number]) => m.url ?? `http://${m.ip}:${m.port}`;
    const origin = this.d.registry.origin;
    const live = origin && servers.find((m) => m.id === origin.serverId);
    if (live) return { serverId: live.id, url: urlOf(live), outcome: 'origin' };
    if (servers.length === 0) return undefined;
    const load = new Map<ServerId, number>();
    for (const st of await this.d.store.listStages()) {
      if (st.state !== 'active') continue;
      for (const id of new Set([st.mediaServerId, st.previousMediaServerId])) if (id !== null) load.set(id, (load.get(id) ?? 0) + 1);
    }
    const best = servers.reduce((a, b) => {
      const la = load.get(a.id) ?? 0, lb = load.get(b.id) ?? 0;
      return lb < la || (lb === la && b.id < a.id) ? b : a;
    });
    return { serverId: best.id, url: urlOf(best), outcome: 'least_loaded' };
  }
}
