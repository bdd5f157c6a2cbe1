/**
 * Whether IVS rules are enforced right now. IVS_RULES=auto enforces while at least one stage is IVS (ARN in an
 * AWS partition, or a leg whose WHIP URL is on live-video.net) and only warns otherwise. The answer is cached
 * in `enforcing` (a plain field the packet path reads) and refreshed by refresh(): at every POST, every stats
 * read, and every second from IngestService's check.
 */
import type { LegConnection, LegConnectionState, LegConnector } from '../media/ports.js';
import { ivsEnforcement, isIvsTarget, type IvsRulesMode } from './IvsRules.js';

export class IvsPolicy {
  /** Read per packet by IvsGate: refuse violations now? */
  enforcing = false;
  /** Report violations (warn or enforce); false only when IVS_RULES=off. */
  readonly inspecting: boolean;
  private ivsLegs = 0;
  private ivsStages = 0;

  constructor(
    readonly mode: IvsRulesMode,
    private readonly stageArns: () => readonly string[],
  ) {
    this.inspecting = mode !== 'off';
    this.enforcing = mode === 'enforce';
  }

  /** Recomputes `enforcing` from the current stages. */
  refresh(): boolean {
    let n = 0;
    for (const arn of this.stageArns()) if (isIvsTarget({ stageArn: arn })) n++;
    this.ivsStages = n;
    this.enforcing = ivsEnforcement(this.mode, n + this.ivsLegs) === 'enforce';
    return this.enforcing;
  }

  /** Number of IVS targets seen at the last refresh (stages by ARN + live legs whose WHIP URL is IVS's). */
  get ivsTargets(): number {
    return this.ivsStages + this.ivsLegs;
  }

  /** Wraps the leg connector to count live legs whose WHIP URL is IVS's, whatever their ARN says. */
  watch(connect: LegConnector): LegConnector {
    return async (o) => {
      const conn = await connect(o);
      if (!isIvsTarget({ whipUrl: o.whipUrl })) return conn;
      this.ivsLegs++;
      this.refresh();
      let counted = true;
      const uncount = () => {
        if (!counted) return;
        counted = false;
        this.ivsLegs--;
      };
      conn.on('state', (s) => {
        if (s === 'closed' || s === 'failed') uncount();
      });
      const wrapped: LegConnection = {
        get sinkPort() {
          return conn.sinkPort;
        },
        get state() {
          return conn.state;
        },
        on: ((event: 'state', listener: (s: LegConnectionState) => void) => conn.on(event, listener)) as LegConnection['on'],
        rttMs: () => conn.rttMs?.(),
        stop: async () => {
          uncount();
          await conn.stop();
        },
      };
      return wrapped;
    };
  }
}
