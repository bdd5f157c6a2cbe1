/**
 * One Media Server: services + app, started in the seed's order (register → StageManager.initialize →
 * WebSocket → sync all stages → periodic sync) and stopped in reverse. Used by index.ts and by tests,
 * which inject the transport (leg connector, ingest endpoint) and the JWKS.
 */
import type { FastifyInstance } from 'fastify';
import type { JWTVerifyGetKey } from 'jose';
import { API_ROUTES, MEDIA_ROUTES, type HealthResponse, type MediaServerStats, type Origin } from '@stagecast/protocol';
import { Router } from '@stagecast/rtc';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { IngestEndpoint, IngestEndpointFactory, LegConnector, RelayConnector, RelayEndpoint, RelayEndpointFactory } from './media/ports.js';
import { rtcIngestEndpoint, rtcLegConnector, rtcRelayConnector, rtcRelayEndpoint } from './media/rtc.js';
import { WHIP_PATH } from './routes/whip.js';
import { APIClientService, publisherReport } from './services/APIClientService.js';
import { IngestAuth } from './services/IngestAuth.js';
import { IngestService } from './services/IngestService.js';
import { IvsPolicy } from './services/IvsPolicy.js';
import { createMetrics } from './services/metrics.js';
import { RelayPuller } from './services/RelayPuller.js';
import { RelaySinks } from './services/RelaySinks.js';
import { DEFAULT_LEG_TIMING } from './services/StageLeg.js';
import { StageManager } from './services/StageManager.js';
import { buildStats } from './services/stats.js';

export interface MediaServerOptions {
  connect?: LegConnector;
  ingestEndpoint?: IngestEndpointFactory;
  /** The relay between Media Servers: the pull's client and the served endpoint (tests may fake them). */
  relayConnector?: RelayConnector;
  relayEndpoint?: RelayEndpointFactory;
  jwksKeys?: JWTVerifyGetKey;
  /** WebSocket / leg retry backoff (tests shorten it). */
  backoff?: { baseMs: number; capMs: number };
}

export interface MediaServer {
  app: FastifyInstance;
  api: APIClientService;
  stageManager: StageManager;
  ingest: IngestService;
  router: Router;
  endpoint: IngestEndpoint;
  relayPuller: RelayPuller;
  relaySinks: RelaySinks;
  relayEndpoint: RelayEndpoint;
  port: number;
  stats(): MediaServerStats;
  health(): HealthResponse;
  ready(): HealthResponse;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function createMediaServer(config: Config, log: Logger, opts: MediaServerOptions = {}): Promise<MediaServer> {
  const startedAt = Date.now();
  const router = new Router();
  const api = new APIClientService({
    apiUrl: config.apiServerUrl,
    secret: config.mediaServerSecret,
    serverId: config.serverId,
    advertisedIp: config.advertisedIp,
    port: config.port,
    ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
    ...(config.maxLegs !== undefined ? { maxLegs: config.maxLegs } : {}),
    requestTimeoutMs: config.requestTimeoutMs,
    log,
    ...(config.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: config.heartbeatIntervalMs } : {}),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
  });
  // IVS rules: enforced while a stage is IVS; the policy also counts legs whose WHIP URL is IVS's.
  const ivs: IvsPolicy = new IvsPolicy(config.ivsRules, (): readonly string[] => stageManager.stageArns());
  const stageManager: StageManager = new StageManager({
    serverId: config.serverId,
    api,
    router,
    connect: ivs.watch(opts.connect ?? rtcLegConnector),
    log,
    syncIntervalMs: config.syncIntervalMs,
    timing: {
      ...DEFAULT_LEG_TIMING,
      renewBeforeMs: config.legTokenRenewBeforeMs,
      maxAgeMs: config.legMaxAgeMs,
      requestTimeoutMs: Math.max(config.requestTimeoutMs, 8000),
      ...(opts.backoff ? { retryBaseMs: opts.backoff.baseMs, retryCapMs: opts.backoff.capMs } : {}),
    },
    ...(config.rtcBindAddress ? { bindAddress: config.rtcBindAddress } : {}),
    // A leg that connected or went, or a new feed (broadcaster / relay), completes a handover or names the origin at
    // the API Server: tell it now, not at the next interval. The relay follows the legs, the origin and the feed.
    onChange: (what) => {
      if (what !== 'origin') api.heartbeatSoon();
      relayPuller.evaluate();
    },
  });
  const auth = new IngestAuth({
    ...(config.ingestToken ? { ingestToken: config.ingestToken } : {}),
    jwksUrl: config.apiServerUrl + API_ROUTES.jwks,
    ...(opts.jwksKeys ? { keys: opts.jwksKeys } : {}),
    jwksTimeoutMs: config.requestTimeoutMs,
  });
  const ingest = new IngestService({ auth, publisher: stageManager, log, ivs, refusalHoldMs: config.ivsRefusalHoldMs, silenceTakeoverMs: config.ingestSilenceTakeoverMs, streamReport: () => router.h264Report() });
  const endpoint = (opts.ingestEndpoint ?? rtcIngestEndpoint)({
    basePath: WHIP_PATH,
    // PUBLIC_URL, else http://ADVERTISED_IP:<bound port>: the URL registered with the API Server.
    endpointUrl: () => api.url + WHIP_PATH,
    // Two: OBS's reconnect POST arrives while its old session is still alive.
    maxSessions: 2,
    onSession: (s) => ingest.onSession(s),
    ...(config.rtcBindAddress ? { bindAddress: config.rtcBindAddress } : {}),
  });

  const relayPuller: RelayPuller = new RelayPuller({
    // Pull while this server publishes into a stage and the broadcaster is on another Media Server.
    target: (): Origin | null => {
      const origin = stageManager.currentOrigin;
      // A broadcaster that just connected here takes over from the relay at its first packet (IngestService).
      if (!origin || origin.serverId === config.serverId || stageManager.legCount === 0 || stageManager.feed === 'broadcaster') return null;
      return origin;
    },
    connect: opts.relayConnector ?? rtcRelayConnector,
    feed: stageManager,
    secret: config.mediaServerSecret,
    log,
    requestTimeoutMs: config.requestTimeoutMs,
    connectTimeoutMs: 10_000,
    backoff: opts.backoff ?? { baseMs: 500, capMs: 10_000 },
    ...(config.rtcBindAddress ? { bindAddress: config.rtcBindAddress } : {}),
  });
  const relaySinks = new RelaySinks({ router, secret: config.mediaServerSecret, log });
  const relayEndpoint = (opts.relayEndpoint ?? rtcRelayEndpoint)({
    basePath: MEDIA_ROUTES.relay,
    endpointUrl: () => api.url + MEDIA_ROUTES.relay,
    maxSessions: 64,
    authorize: (token) => relaySinks.authorize(token),
    onSession: (s) => relaySinks.onSession(s),
    ...(config.rtcBindAddress ? { bindAddress: config.rtcBindAddress } : {}),
  });

  const stats = (): MediaServerStats =>
    buildStats({
      serverId: config.serverId,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      router: router.stats(),
      stages: stageManager.stats(),
      api: api.status(),
      ingest: ingest.stats(),
      feed: stageManager.feed,
      relay: { pull: relayPuller.stats(), sinks: relaySinks.stats() },
    });
  let stopped = false;
  let draining = false;
  const checks = (): HealthResponse['checks'] => {
    const a = api.status();
    const m = stageManager.stats();
    const fresh = a.registrationFresh;
    return {
      registration: { ok: fresh, detail: fresh ? `heartbeat ${a.lastHeartbeatAt ?? ''}` : a.registered ? 'heartbeats not acknowledged' : 'not registered with the API Server' },
      websocket: { ok: a.websocket === 'up', detail: a.websocket },
      stages: { ok: m.stagesConnected === m.stagesExpected, detail: `${m.stagesConnected}/${m.stagesExpected} connected` },
      publisher: { ok: true, detail: m.publisherOnline ? 'online' : 'offline' },
    };
  };
  const uptimeSeconds = () => Math.round((Date.now() - startedAt) / 1000);
  /**
   * Liveness: 200 while the process answers. The API Server being away is no reason to restart a Media Server
   * that forwards media: the checks say what is wrong, the status stays ok.
   */
  const health = (): HealthResponse => ({ status: 'ok', service: 'media-server', uptimeSeconds: uptimeSeconds(), checks: checks() });
  /** Readiness: it can take a broadcaster — registered (heartbeats acknowledged), stage events connected, not stopping. */
  const ready = (): HealthResponse => {
    const c = checks();
    const all: HealthResponse['checks'] = { ...c, stopping: stopped ? { ok: false, detail: 'shutting down' } : { ok: true } };
    const ok = c.registration!.ok && c.websocket!.ok && !stopped;
    return { status: ok ? 'ok' : 'degraded', service: 'media-server', uptimeSeconds: uptimeSeconds(), checks: all };
  };
  const metrics = createMetrics(stats);
  const app = await buildApp({ log, health: { health, ready, stats, metrics, ...(config.metricsToken ? { metricsToken: config.metricsToken } : {}) }, ingest, endpoint, relay: relayEndpoint });

  /**
   * Drain (SIGTERM): say `draining` so the API Server gives every stage to other Media Servers, and keep serving each
   * until its move is complete (stage_assigned names neither this server nor it as previous), or DRAIN_TIMEOUT_MS.
   */
  const drain = async (): Promise<void> => {
    if (config.drainTimeoutMs <= 0 || !api.isRegistered || stageManager.legCount === 0) return;
    draining = true;
    const t0 = Date.now();
    log.info({ legs: stageManager.legCount, timeoutMs: config.drainTimeoutMs }, 'drain.started');
    await api.heartbeat().catch(() => undefined);
    const outcome = await stageManager.waitForHandovers(config.drainTimeoutMs);
    // 'nowhere': no other Media Server can take the stages; waiting longer would only delay the stop.
    log.info({ outcome, legsLeft: stageManager.legCount, ms: Date.now() - t0 }, outcome === 'timeout' ? 'drain.timed_out' : 'drain.completed');
  };

  const server: MediaServer = {
    app,
    api,
    stageManager,
    ingest,
    router,
    endpoint,
    relayPuller,
    relaySinks,
    relayEndpoint,
    port: 0,
    stats,
    health,
    ready,
    async start() {
      await app.listen({ port: config.port, host: config.host });
      const addr = app.server.address();
      server.port = typeof addr === 'object' && addr ? addr.port : config.port;
      log.info({ port: server.port, host: config.host, serverId: config.serverId }, 'server.listening');
      router.startTimer(1000);
      ingest.start();
      api.setHeartbeatSource(() => ({
        ...stageManager.heartbeatPayload(),
        publisher: publisherReport(stats()),
        ingest: stageManager.feed,
        ...(draining ? { draining: true } : {}),
      }));
      // When PORT=0, the API Server must learn the real port.
      api.setAdvertisedPort(server.port);
      try {
        await api.register();
      } catch {
        // logged by the client; the heartbeat loop keeps registering until the API Server answers
      }
      stageManager.initialize();
      api.connectWebSocket();
      await stageManager.syncAllStages();
      stageManager.startPeriodicSync(config.syncIntervalMs);
      api.startHeartbeat();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      log.info('server.stopping');
      await drain();
      stageManager.stopPeriodicSync();
      api.stopHeartbeat();
      relayPuller.stop();
      await stageManager.stop(); // every leg DELETEs its WHIP session
      ingest.stop();
      endpoint.close();
      relayEndpoint.close();
      relaySinks.close();
      await api.sendFinalHeartbeat();
      api.stop();
      await app.close();
      router.close();
      log.info('server.stopped');
    },
  };
  return server;
}
