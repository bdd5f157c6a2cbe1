/**
 * The origin's side of the relay: each relay session another Media Server opens (POST MEDIA_ROUTES.relay with the
 * Media Server secret) becomes a sink of this server's Router, exactly as a stage leg is — it joins once its tracks
 * can carry packets (so the keyframe cache is replayed to it at once), its NACKs are answered from the packet store,
 * its PLIs become keyframe requests toward the broadcaster. Closing the session removes the sink.
 */
import { secretEquals } from '@stagecast/service';
import type { Logger } from '../logger.js';
import type { RelaySession } from '../media/ports.js';
import type { LegSink, SinkHostPort } from './StageLeg.js';

export interface RelaySinkStats {
  /** Relay sessions open now. */
  active: number;
  /** Relay sessions served since start. */
  served: number;
  /** POSTs refused for a missing or wrong secret. */
  refused: number;
  sessions: { id: string; since: string; packetsSent: number; retransmitted: number; nacksReceived: number; plisReceived: number }[];
}

export class RelaySinks {
  private readonly live = new Map<string, { session: RelaySession; sink?: LegSink; since: number }>();
  private served = 0;
  private refused = 0;
  private readonly log: Logger;

  constructor(
    private readonly d: { router: SinkHostPort; secret: string; log: Logger },
  ) {
    this.log = d.log.child({ component: 'relay-sinks' });
  }

  /** The relay endpoint's authorize: the Media Server secret, compared in constant time. */
  authorize(token: string | undefined): boolean {
    const ok = token !== undefined && token !== '' && secretEquals(token, this.d.secret);
    if (!ok) {
      this.refused++;
      this.log.warn({ tokenGiven: token !== undefined && token !== '' }, 'relay.refused');
    }
    return ok;
  }

  onSession(session: RelaySession): void {
    const entry: { session: RelaySession; sink?: LegSink; since: number } = { session, since: Date.now() };
    this.live.set(session.id, entry);
    this.served++;
    session.onRtcp((packet) => entry.sink?.handleRtcp(packet));
    session.onWritable(() => {
      if (!this.live.has(session.id) || entry.sink) return;
      entry.sink = this.d.router.addSink(session.sinkPort);
      this.log.info({ relaySession: session.id }, 'relay.sink_connected');
    });
    session.on('closed', (reason) => {
      this.live.delete(session.id);
      entry.sink?.close();
      entry.sink = undefined;
      this.log.info({ relaySession: session.id, reason }, 'relay.sink_closed');
    });
    this.log.info({ relaySession: session.id }, 'relay.sink_created');
  }

  stats(): RelaySinkStats {
    const sessions: RelaySinkStats['sessions'] = [];
    for (const [id, e] of this.live) {
      const st = e.sink?.stats();
      sessions.push({
        id: id.slice(0, 8),
        since: new Date(e.since).toISOString(),
        packetsSent: st?.packetsSent ?? 0,
        retransmitted: st?.retransmitted ?? 0,
        nacksReceived: st?.nacksReceived ?? 0,
        plisReceived: st?.plisReceived ?? 0,
      });
    }
    return { active: this.live.size, served: this.served, refused: this.refused, sessions };
  }

  /** Ends every relay session. Idempotent. */
  close(): void {
    for (const e of [...this.live.values()]) e.session.close('media server stopping');
    this.live.clear();
  }
}
