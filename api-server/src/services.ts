/** The services of one API Server, built from config and wired to each other (no I/O until start()). */
import { API_ROUTES, MEDIA_ROUTES } from '@stagecast/protocol';
import { Gauge } from 'prom-client';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { createIvsClient, IVS_STAGE_TPS, IVS_TOKEN_TPS, IvsStageProvider } from './providers/ivs.js';
import { IVS_DISCONNECT_TPS, IvsParticipantDisconnector } from './providers/ivs-disconnect.js';
import { IvsApiTokenIssuer, IvsSelfSignedTokenIssuer } from './providers/ivs-tokens.js';
import { LocalStageProvider } from './providers/local.js';
import { PacedProvider, Pacer } from './providers/pacing.js';
import type { StageProvider } from './providers/provider.js';
import { LocalTokenIssuer, type StageTokenIssuer } from './providers/token-issuer.js';
import { WhipTargetProvider, WhipTargetTokenIssuer } from './providers/whip.js';
import { ConsolidationService } from './services/ConsolidationService.js';
import { CostMeter } from './services/CostMeter.js';
import { EventBus } from './services/EventBus.js';
import { IvsViewerReconciler } from './services/IvsViewerReconciler.js';
import { MediaServerRegistry } from './services/MediaServerRegistry.js';
import { PublishTokenService } from './services/PublishTokenService.js';
import { StageAssignmentService } from './services/StageAssignmentService.js';
import { StageAutoScalingService } from './services/StageAutoScalingService.js';
import { StageEndpointRefresher } from './services/StageEndpointRefresher.js';
import { StageServerPool } from './services/StageServerPool.js';
import { ViewerRateLimiter } from './services/ViewerRateLimiter.js';
import { ViewerService } from './services/ViewerService.js';
import { WhipFrontDoor } from './services/WhipFrontDoor.js';
import { LocalLease, type ScalerLease } from './store/lease.js';
import { redisPrefix, RedisStore } from './store/redis.js';
import { RedisAnnouncementRelay } from './store/redis-bus.js';
import { RedisLease } from './store/redis-lease.js';
import { RedisWaitingJoins } from './store/redis-waiting.js';
import { SqliteStore } from './store/sqlite.js';
import type { Store } from './store/store.js';
import { TokenService } from './tokens.js';

export interface Services {
  config: Config;
  log: Logger;
  store: Store;
  /** Who runs the pool-wide jobs (ScalerLease): always this server on SQLite, the lease holder on Redis. */
  lease: ScalerLease;
  /** REDIS_URL: the link to the other API Servers (connect, lease, announcements), started before the services. */
  cluster?: { start(): Promise<void>; stop(): Promise<void> };
  tokens: TokenService;
  provider: PacedProvider;
  /** Mints the stages' participant tokens the provider's way. */
  issuer: StageTokenIssuer;
  bus: EventBus;
  metrics: Metrics;
  scaling: StageAutoScalingService;
  viewers: ViewerService;
  /** Joins and heartbeats made with the public viewer key, per client address. */
  viewerLimits: ViewerRateLimiter;
  registry: MediaServerRegistry;
  /** Which Media Server publishes into which stage. */
  assignment: StageAssignmentService;
  /** POST /whip: the broadcaster sent on to the origin or the least-loaded Media Server. */
  frontDoor: WhipFrontDoor;
  publishTokens: PublishTokenService;
  /** STAGE_PROVIDER=ivs: stage endpoints re-read before IVS's 14-day cache limit and after a failed WHIP POST. */
  endpoints?: StageEndpointRefresher;
  /** Participant-time per stage, stored by the minute: GET /api/cost, /metrics, the dashboard. */
  cost: CostMeter;
  /** Merges sparse stages when the audience shrinks (CONSOLIDATION_ENABLED). */
  consolidation: ConsolidationService;
  /** STAGE_PROVIDER=local: the stage servers — where new stages go, and their health (a down one loses its stages). */
  stageServers?: StageServerPool;
  /** STAGE_PROVIDER=ivs: viewer accounting checked against ListParticipants (started with the viewers). */
  ivsViewers?: IvsViewerReconciler;
  startedAt: number;
  /** Set when the server begins to stop: /ready answers 503 from then on. */
  lifecycle: { draining: boolean };
}

export const WHIP_JOIN_REFUSAL =
  'STAGE_PROVIDER=whip: the stages are WHIP destinations and viewers watch there; there is no Stagecast stage to join';

/** A provider with the token issuer and call budget that go with it. */
export interface ProviderBundle {
  provider: PacedProvider;
  issuer: StageTokenIssuer;
  /** The IVS provider itself (for the viewer reconciler), when STAGE_PROVIDER=ivs. */
  ivs?: IvsStageProvider;
  /** STAGE_PROVIDER=ivs: released and expired seats are disconnected at IVS (their tokens outlive them). */
  seats?: IvsParticipantDisconnector;
  /** STAGE_PROVIDER=local: the stage server client itself (StageServerPool picks its servers and reads their health). */
  local?: LocalStageProvider;
}

export function createProvider(config: Config, log: Logger, tokens: TokenService): ProviderBundle {
  const plog = log.child({ component: 'provider' });
  switch (config.stageProvider) {
    case 'local': {
      const inner = new LocalStageProvider({ baseUrls: config.stageServerUrls, secret: config.stageServerSecret, poolId: config.stagePoolId });
      return { provider: new PacedProvider(inner, plog), issuer: new LocalTokenIssuer(tokens), local: inner };
    }
    case 'whip': {
      const inner = new WhipTargetProvider(config.whipTargets, config.stagePoolId);
      return { provider: new PacedProvider(inner, plog), issuer: new WhipTargetTokenIssuer(inner) };
    }
    case 'ivs': {
      const ivsConfig = config.ivs!;
      const client = createIvsClient(ivsConfig.region);
      // One 5 TPS budget for every stage call (CreateStage, DeleteStage, GetStage, ListStages, ListParticipants).
      const pacer = new Pacer(IVS_STAGE_TPS, plog, undefined, 1);
      const ivs = new IvsStageProvider(client, { poolId: config.stagePoolId, pacer });
      const issuer = ivsConfig.selfSigned
        ? new IvsSelfSignedTokenIssuer({ ...ivsConfig.selfSigned, eventsUrl: ivsConfig.eventsUrl })
        : new IvsApiTokenIssuer(client, new Pacer(IVS_TOKEN_TPS, plog, undefined, 1));
      // DisconnectParticipant has a 5 TPS quota of its own: its own budget, so kicks never slow scaling.
      const seats = new IvsParticipantDisconnector(client, { pacer: new Pacer(IVS_DISCONNECT_TPS, plog, undefined, 1), log: plog });
      return { provider: new PacedProvider(ivs, plog, undefined, pacer), issuer, ivs, seats };
    }
  }
}

/**
 * With REDIS_URL, what makes several API Servers one pool besides the shared store: the scaler lease, the waiting
 * joins' counts and the announcement relay. Without: one node, whose lease is always held.
 */
function createCluster(
  config: Config,
  log: Logger,
  bus: EventBus,
  store: Store,
  metrics: Metrics,
): Pick<Services, 'lease' | 'cluster'> & { waitingJoins?: RedisWaitingJoins } {
  if (!config.redis || !(store instanceof RedisStore)) return { lease: new LocalLease() };
  const prefix = redisPrefix(config.stagePoolId);
  const lease = new RedisLease({ redis: store.redis, key: `${prefix}lease:scaler`, leaseMs: config.redis.leaseMs, log });
  // A report lives 3 planner ticks: a server that stops reporting (dead, cut off) stops counting soon.
  const waitingJoins = new RedisWaitingJoins({ redis: store.redis, prefix, serverId: lease.holderId, ttlMs: 3 * config.scaling.tickMs });
  const relay = new RedisAnnouncementRelay({ url: config.redis.url, channel: `${prefix}announce`, bus, publisher: store.redis, log, registry: metrics.registry });
  const clog = log.child({ component: 'cluster' });
  new Gauge({
    name: 'stagecast_scaler_lease_held',
    help: '1 while this API Server holds the scaler lease (it creates and deletes stages, reconciles, consolidates, meters cost)',
    registers: [metrics.registry],
    collect() {
      this.set(lease.held ? 1 : 0);
    },
  });
  return {
    lease,
    waitingJoins,
    cluster: {
      async start() {
        // Bounded: an API Server started while Redis is away serves 503s until it returns, then recovers by itself.
        if (!(await store.open(5000))) clog.warn('redis.unreachable_at_start');
        await relay.start(1000);
        await lease.start();
        clog.info({ holder: lease.held }, 'cluster.started');
      },
      async stop() {
        await lease.stop();
        await relay.stop();
      },
    },
  };
}

export async function createServices(config: Config, log: Logger, opts: { provider?: StageProvider } = {}): Promise<Services> {
  const bus = new EventBus();
  const store: Store = config.redis ? new RedisStore(config.redis.url, config.stagePoolId) : new SqliteStore(config.dataDir);
  const tokens = await TokenService.open(config.dataDir);
  const bundle: ProviderBundle = opts.provider
    ? { provider: new PacedProvider(opts.provider, log.child({ component: 'provider' })), issuer: new LocalTokenIssuer(tokens) }
    : createProvider(config, log, tokens);
  const { provider, issuer } = bundle;
  const metrics = new Metrics(store);
  const { lease, cluster, waitingJoins } = createCluster(config, log, bus, store, metrics);
  const scaling = new StageAutoScalingService({
    store,
    provider,
    bus,
    log,
    metrics,
    lease,
    ...(waitingJoins ? { waitingJoins } : {}),
    config: { ...config.scaling, poolId: config.stagePoolId },
  });
  // The stage servers' pool chooses where the local provider creates each stage, and watches their health.
  const stageServers = bundle.local
    ? new StageServerPool({
        urls: config.stageServerUrls,
        provider: bundle.local,
        store,
        bus,
        log,
        metrics,
        intervalMs: config.stageServerHealthIntervalMs,
        replan: () => scaling.plan(),
      })
    : undefined;
  if (stageServers) bundle.local!.useSelector(stageServers);
  const ivsViewers =
    bundle.ivs && config.ivs
      ? new IvsViewerReconciler({
          store,
          lease,
          ivs: bundle.ivs,
          log,
          metrics,
          intervalMs: config.ivs.viewerReconcileIntervalMs,
          callsPerSecond: config.ivs.viewerReconcileTps,
        })
      : undefined;
  const viewers = new ViewerService({
    store,
    issuer,
    scaling,
    metrics,
    log,
    ...(ivsViewers ? { reconciler: ivsViewers } : {}),
    ...(bundle.seats ? { seats: bundle.seats } : {}),
    onMoveConfirmed: () => consolidation.switched(),
    config: {
      viewerTokenTtlSeconds: config.viewerTokenTtlSeconds,
      viewerHeartbeatIntervalMs: config.viewerHeartbeatIntervalMs,
      ...(!opts.provider && config.stageProvider === 'whip' ? { joinRefusal: WHIP_JOIN_REFUSAL } : {}),
    },
  });
  const viewerLimits = new ViewerRateLimiter({ ...config.viewerRateLimits, metrics });
  // Named on purpose by the operator: said once at start, so an exemption is never silent.
  if (config.viewerRateLimits.exempt.length) log.warn({ exempt: config.viewerRateLimits.exempt }, 'viewers.rate_limit_exempt');
  const registry = new MediaServerRegistry({ store, bus, log, heartbeatIntervalMs: config.heartbeatIntervalMs });
  const endpoints =
    bundle.ivs && config.ivs
      ? new StageEndpointRefresher({
          store,
          lease,
          provider,
          log,
          metrics,
          maxAgeMs: config.ivs.endpointMaxAgeMs,
          checkIntervalMs: Math.min(3_600_000, Math.max(1000, Math.floor(config.ivs.endpointMaxAgeMs / 10))),
          failureMinIntervalMs: 30_000,
        })
      : undefined;
  const publishTokens = new PublishTokenService({
    ...(endpoints ? { endpoints } : {}),
    store,
    tokens,
    issuer,
    publishTokenTtlSeconds: config.publishTokenTtlSeconds,
    frontDoorUrl: () => (config.mediaServerUrl ? `${config.mediaServerUrl}${MEDIA_ROUTES.whip}` : `${config.publicUrl}${API_ROUTES.whipFrontDoor}`),
  });
  const assignment = new StageAssignmentService({ store, bus, registry, log, metrics, heartbeatIntervalMs: config.heartbeatIntervalMs });
  const frontDoor = new WhipFrontDoor({
    store,
    registry,
    tokens,
    metrics,
    log,
    ...(config.ingestToken ? { ingestToken: config.ingestToken } : {}),
    retryAfterS: Math.max(1, Math.ceil(config.heartbeatIntervalMs / 1000)),
  });
  const cost = new CostMeter({ store, metrics, log, lease, config: config.cost });
  const consolidation = new ConsolidationService({
    store,
    scaling,
    metrics,
    log,
    config: { ...config.scaling, ...config.consolidation },
  });
  return {
    consolidation,
    config,
    log,
    store,
    lease,
    ...(cluster ? { cluster } : {}),
    cost,
    tokens,
    provider,
    issuer,
    bus,
    metrics,
    scaling,
    viewers,
    viewerLimits,
    registry,
    assignment,
    frontDoor,
    publishTokens,
    ...(ivsViewers ? { ivsViewers } : {}),
    ...(stageServers ? { stageServers } : {}),
    ...(endpoints ? { endpoints } : {}),
    startedAt: Date.now(),
    lifecycle: { draining: false },
  };
}
