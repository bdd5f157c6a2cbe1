/**
 * The broadcaster's slot: one at a time. A POST from anyone else while a broadcaster is live is a
 * Conflict (409); a POST that presents the SAME token replaces the live session (OBS reconnects with a
 * new POST, and its old session may not be dead yet). POSTs are serialized, so the session the endpoint
 * hands over during a POST belongs to that POST's broadcaster.
 */
import { Conflict } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { IngestSession } from '../media/ports.js';
import type { IngestAuth, IngestPrincipal } from './IngestAuth.js';

export interface PublisherSink {
  onPublisherConnected(session: IngestSession): void;
  onPublisherDisconnected(session?: IngestSession): void;
}

interface Live {
  session: IngestSession;
  principal: IngestPrincipal;
  since: number;
}

export interface IngestStats {
  live: boolean;
  sessionId?: string;
  since?: string;
  auth?: 'static' | 'jwt';
  sessions: number;
  replacements: number;
  conflicts: number;
  refused: number;
}

export class IngestService {
  private live: Live | undefined;
  private claim: IngestPrincipal | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private sessions = 0;
  private replacements = 0;
  private conflicts = 0;
  private refused = 0;
  private stopped = false;
  private readonly log: Logger;

  constructor(
    private readonly d: { auth: IngestAuth; publisher: PublisherSink; log: Logger; now?: () => number },
  ) {
    this.log = d.log.child({ component: 'ingest' });
  }

  /** Verifies a broadcaster's Authorization header. Throws Unauthorized / Forbidden / ProviderError. */
  async authorize(header: string | string[] | undefined): Promise<IngestPrincipal> {
    try {
      return await this.d.auth.authorizeHeader(header);
    } catch (err) {
      this.refused++;
      throw err;
    }
  }

  /**
   * Runs one session-creating POST for `principal` (the endpoint's handle()), serialized with every
   * other POST. Throws Conflict when another broadcaster is live.
   */
  admit<T>(principal: IngestPrincipal, run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.stopped) throw new Conflict('the media server is stopping');
      if (this.live && this.live.principal.tokenHash !== principal.tokenHash) {
        this.conflicts++;
        this.log.warn({ liveSession: this.live.session.id }, 'publisher.conflict');
        throw new Conflict('another broadcaster is live');
      }
      this.claim = principal;
      try {
        return await run();
      } finally {
        this.claim = undefined;
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The endpoint's onSession: called while admit() runs the POST that created it. */
  onSession(session: IngestSession): void {
    const principal = this.claim;
    if (!principal || this.stopped) {
      // Not created through admit() (cannot happen with the routes as written): refuse it.
      this.log.error({ sessionId: session.id }, 'publisher.unclaimed_session');
      session.close();
      return;
    }
    this.sessions++;
    const old = this.live;
    this.live = { session, principal, since: (this.d.now ?? Date.now)() };
    session.on('closed', () => this.onClosed(session));
    // The router switches to the new source first; then the old session goes (no gap for the legs).
    this.d.publisher.onPublisherConnected(session);
    if (old) {
      this.replacements++;
      this.log.info({ oldSession: old.session.id, sessionId: session.id }, 'publisher.replaced');
      old.session.close();
    }
  }

  private onClosed(session: IngestSession): void {
    if (this.live?.session !== session) return;
    this.live = undefined;
    this.d.publisher.onPublisherDisconnected(session);
  }

  get online(): boolean {
    return this.live !== undefined;
  }

  stats(): IngestStats {
    const s: IngestStats = {
      live: this.live !== undefined,
      sessions: this.sessions,
      replacements: this.replacements,
      conflicts: this.conflicts,
      refused: this.refused,
    };
    if (this.live) {
      s.sessionId = this.live.session.id;
      s.since = new Date(this.live.since).toISOString();
      s.auth = this.live.principal.kind;
    }
    return s;
  }

  /** Ends the broadcaster's session. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const live = this.live;
    this.live = undefined;
    if (live) {
      live.session.close();
      this.d.publisher.onPublisherDisconnected(live.session);
    }
  }
}
