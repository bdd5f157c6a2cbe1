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
  /** The WHIP front door: 307 to a live Media Server's /whip (the origin while it lives). */
  whipFrontDoor: '/whip',
} as const;

/** Routes of the Media Server that other processes call. */
export const MEDIA_ROUTES = {
  whip: '/whip',
  /**
   * The broadcast, for another Media Server (MEDIA_SERVER_SECRET as Bearer): a WHEP-style POST of a recvonly offer,
   * answered 201 with the SDP and a Location to DELETE.
   */
  relay: '/relay/whep',
} as const;
