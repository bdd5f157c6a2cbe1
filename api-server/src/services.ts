/** The services of one API Server, built from config and wired to each other (no I/O until start()). */
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { LocalStageProvider } from './providers/local.js';
import { PacedProvider } from './providers/pacing.js';
import type { StageProvider } from './providers/provider.js';
import { EventBus } from './services/EventBus.js';
import { MediaServerRegistry } from './services/MediaServerRegistry.js';
import { PublishTokenService } from './services/PublishTokenService.js';
import { StageAutoScalingService } from './services/StageAutoScalingService.js';
import { ViewerService } from './services/ViewerService.js';
import { SqliteStore } from './store/sqlite.js';
import type { Store } from './store/store.js';
import { TokenService } from './tokens.js';

export interface Services {
  config: Config;
  log: Logger;
  store: Store;
  tokens: TokenService;
  provider: PacedProvider;
  bus: EventBus;
  metrics: Metrics;
  scaling: StageAutoScalingService;
  viewers: ViewerService;
  registry: MediaServerRegistry;
  publishTokens: PublishTokenService;
  startedAt: number;
}

export function createProvider(config: Config): StageProvider {
  switch (config.stageProvider) {
    case 'local':
      return new LocalStageProvider({ baseUrl: config.stageServerUrl, secret: config.stageServerSecret, poolId: config.stagePoolId });
  }
}

export async function createServices(config: Config, log: Logger, opts: { provider?: StageProvider } = {}): Promise<Services> {
  const store = new SqliteStore(config.dataDir);
  const tokens = await TokenService.open(config.dataDir);
  const provider = new PacedProvider(opts.provider ?? createProvider(config), log.child({ component: 'provider' }));
  const bus = new EventBus();
  const metrics = new Metrics(store);
  const scaling = new StageAutoScalingService({
    store,
    provider,
    bus,
    log,
    metrics,
    config: { ...config.scaling, poolId: config.stagePoolId },
  });
  const viewers = new ViewerService({
    store,
    tokens,
    scaling,
    metrics,
    log,
    config: { viewerTokenTtlSeconds: config.viewerTokenTtlSeconds, viewerHeartbeatIntervalMs: config.viewerHeartbeatIntervalMs },
  });
  const registry = new MediaServerRegistry({ store, bus, log, heartbeatIntervalMs: config.heartbeatIntervalMs });
  const publishTokens = new PublishTokenService({
    store,
    tokens,
    publishTokenTtlSeconds: config.publishTokenTtlSeconds,
    mediaServerUrl: config.mediaServerUrl,
  });
  return { config, log, store, tokens, provider, bus, metrics, scaling, viewers, registry, publishTokens, startedAt: Date.now() };
}
