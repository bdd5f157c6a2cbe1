/** The real transport (packages/rtc on node-datachannel) behind the Media Server's ports. */
import { WhepEndpoint, WHEPClient, WhipEndpoint, WHIPClient } from '@stagecast/rtc';
import type { IngestEndpointFactory, LegConnector, RelayConnector, RelayEndpointFactory } from './ports.js';

export const rtcIngestEndpoint: IngestEndpointFactory = (o) =>
  new WhipEndpoint({
    basePath: o.basePath,
    endpointUrl: o.endpointUrl,
    maxSessions: o.maxSessions,
    ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}),
    // The Media Server authorizes before handle() (IngestAuth + the one-broadcaster rule).
    onSession: (session) => o.onSession(session),
  });

/** A WHIP leg into a stage, or a WHEP pull of the origin's broadcast: the same options, started the same way. */
async function startClient<C extends { start(): Promise<void> }>(
  Client: new (o: { url: string; token: string; id: string; timeoutMs: number; bindAddress?: string }) => C,
  o: { url: string; token: string; id: string; timeoutMs: number; bindAddress?: string },
): Promise<C> {
  const client = new Client({ url: o.url, token: o.token, id: o.id, timeoutMs: o.timeoutMs, ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}) });
  await client.start(); // on failure it has closed itself
  return client;
}

export const rtcLegConnector: LegConnector = (o) => startClient(WHIPClient, { ...o, url: o.whipUrl });

export const rtcRelayEndpoint: RelayEndpointFactory = (o) =>
  new WhepEndpoint({
    basePath: o.basePath,
    endpointUrl: o.endpointUrl,
    maxSessions: o.maxSessions,
    ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}),
    authorize: (token) => (o.authorize(token) ? { ok: true } : { ok: false, status: 401, message: 'the relay needs the media server secret' }),
    onSession: (session) => o.onSession(session),
  });

export const rtcRelayConnector: RelayConnector = (o) => startClient(WHEPClient, o);
