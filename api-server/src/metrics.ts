/** Prometheus metrics on an own Registry (no global state shared with other code in the process). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Store } from './store/store.js';

export class Metrics {
  readonly registry = new Registry();
  readonly scalingActions: Counter<'action'>;
  readonly joins: Counter<'result'>;
  readonly rateLimited: Counter<'kind'>;
  readonly rateLimitExempt: Counter<'kind'>;
  readonly joinRate: Gauge;
  readonly endpointRefreshes: Counter<'reason' | 'result'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly assignments: Gauge<'server'>;
  readonly handovers: Counter<'reason'>;
  readonly handoversCompleted: Counter<'result'>;
  readonly frontDoor: Counter<'outcome'>;
  readonly stageServerChecksFailed: Counter<'server'>;
  readonly stageServerDowns: Counter<'server'>;
  private stageServers: () => { url: string; up: boolean }[] = () => [];

  constructor(store: Store) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'stagecast_api_' });
    new Gauge({
      name: 'stagecast_stages',
      help: 'Stages in the pool by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const stages = await store.listStages().catch(() => undefined); // store away: the last values stay
        if (!stages) return;
        this.set({ state: 'active' }, stages.filter((s) => s.state === 'active').length);
        this.set({ state: 'draining' }, stages.filter((s) => s.state === 'draining').length);
      },
    });
    new Gauge({
      name: 'stagecast_viewers',
      help: 'Seats taken across all stages',
      registers,
      async collect() {
        const n = await store.countViewers().catch(() => undefined);
        if (n !== undefined) this.set(n);
      },
    });
    new Gauge({
      name: 'stagecast_media_servers',
      help: 'Registered Media Servers by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const servers = await store.listMediaServers().catch(() => undefined);
        if (!servers) return;
        this.set({ state: 'online' }, servers.filter((s) => s.state === 'online').length);
        this.set({ state: 'offline' }, servers.filter((s) => s.state === 'offline').length);
      },
    });
    this.scalingActions = new Counter({
      name: 'stagecast_scaling_actions_total',
      help: 'Scaling actions applied (create, delete, adopt, drop, create_failed, delete_failed)',
      labelNames: ['action'],
      registers,
    });
    this.joins = new Counter({
      name: 'stagecast_joins_total',
      help: 'Viewer joins by result (seated, waited, capacity_exceeded, rate_limited, refused, unavailable, error)',
      labelNames: ['result'],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'stagecast_viewer_rate_limited_total',
      help: 'Requests made with the viewer key refused with 429 (per-address rate limit), by kind (join, heartbeat)',
      labelNames: ['kind'],
      registers,
    });
    this.joinRate = new Gauge({
      name: 'stagecast_join_rate',
      help: 'Joins per second the planner last used for predictive spares (SCALE_SPARE_LEAD_S; 0 when off)',
      registers,
    });
    this.rateLimitExempt = new Counter({
      name: 'stagecast_viewer_rate_limit_exempt_total',
      help: 'Requests made with the viewer key from an address in VIEWER_RATE_LIMIT_EXEMPT (not limited), by kind (join, heartbeat)',
      labelNames: ['kind'],
      registers,
    });
    this.endpointRefreshes = new Counter({
      name: 'stagecast_stage_endpoint_refreshes_total',
      help: 'Stage endpoints read again from the provider (IVS GetStage), by reason (age, whip_failed) and result (changed, unchanged, gone, error)',
      labelNames: ['reason', 'result'],
      registers,
    });
    this.assignments = new Gauge({
      name: 'stagecast_stage_assignments',
      help: 'Active stages owned per Media Server (server="none": no live Media Server can take them)',
      labelNames: ['server'],
      registers,
    });
    this.handovers = new Counter({
      name: 'stagecast_stage_handovers_total',
      help: 'Stages moved from one Media Server to another (or to none), by reason (rebalance, drain, offline, socket_closed, no_server)',
      labelNames: ['reason'],
      registers,
    });
    this.handoversCompleted = new Counter({
      name: 'stagecast_stage_handovers_completed_total',
      help: 'Handovers ended, by result (handover_completed: new leg connected, handover_timeout, previous_gone)',
      labelNames: ['result'],
      registers,
    });
    this.frontDoor = new Counter({
      name: 'stagecast_whip_front_door_redirects_total',
      help: 'POST /whip at the API Server by outcome (origin, least_loaded: 307; unavailable: 503; unauthorized, forbidden)',
      labelNames: ['outcome'],
      registers,
    });
    this.stageServerChecksFailed = new Counter({
      name: 'stagecast_stage_server_checks_failed_total',
      help: 'Failed GET /health reads of a stage server (STAGE_PROVIDER=local), by server',
      labelNames: ['server'],
      registers,
    });
    this.stageServerDowns = new Counter({
      name: 'stagecast_stage_server_down_total',
      help: 'Times a stage server was marked down (its stages removed from the pool), by server',
      labelNames: ['server'],
      registers,
    });
    const stageServers = () => this.stageServers();
    new Gauge({
      name: 'stagecast_stage_server_up',
      help: '1 while a stage server (STAGE_PROVIDER=local) takes stages, 0 while it is down, by server',
      labelNames: ['server'],
      registers,
      collect() {
        for (const s of stageServers()) this.set({ server: s.url }, s.up ? 1 : 0);
      },
    });
    this.httpDuration = new Histogram({
      name: 'stagecast_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
  }

  /** The stage servers' up/down state, read at each scrape. */
  registerStageServers(read: () => { url: string; up: boolean }[]): void {
    this.stageServers = read;
  }
}
