/** Header names that cross processes. */
export const HEADERS = {
  apiKey: 'x-api-key',
  mediaServerSecret: 'x-media-server-secret',
  authorization: 'authorization',
} as const;

/** Routes of the API Server that other processes call. */
export const API_ROUTES = {
  health: '/health',
  register: '/api/media/register',
  heartbeat: '/api/media/heartbeat',
  stages: '/api/media/stages',
  token: '/api/media/token',
  servers: '/api/media/servers',
  ingestToken: '/api/media/ingest-token',
  viewersJoin: '/api/viewers/join',
  viewerHeartbeat: (id: string) => `/api/viewers/${encodeURIComponent(id)}/heartbeat`,
  viewer: (id: string) => `/api/viewers/${encodeURIComponent(id)}`,
  participantEvents: '/api/stage-server/participant-events',
  jwks: '/.well-known/jwks.json',
  ws: '/ws',
} as const;
