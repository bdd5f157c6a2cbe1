/**
 * The WHIP front door: one URL for the broadcaster (OBS) whatever Media Server holds it. A POST with a valid ingest
 * token is sent on (307) to the origin while it is live and not draining, else to the least-loaded ready Media
 * Server — so after the origin dies, the broadcaster's reconnect lands on a live one. The token is verified the way
 * the Media Server verifies it (INGEST_TOKEN, or our ES384 JWT for 'stagecast:ingest' with publish).
 */
import { createLocalJWKSet } from 'jose';
import { CapacityExceeded, MEDIA_ROUTES, StagecastError, Unauthorized, type ServerId } from '@stagecast/protocol';
import { bearerToken, ParticipantTokenVerifier, secretEquals } from '@stagecast/service';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { INGEST_RESOURCE, type TokenService } from '../tokens.js';
import type { MediaServerRegistry } from './MediaServerRegistry.js';

export type FrontDoorOutcome = 'origin' | 'least_loaded';

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
