/**
 * What the Media Server needs from the WebRTC transport (packages/rtc/src/transport), as narrow ports that
 * the real WhipSession / WhipEndpoint / WHIPClient satisfy (rtc.ts plugs them in) and tests fake.
 */
import type { HttpRequest, HttpResponse, MediaKind, SinkPort, SourceParams, SourcePort } from '@stagecast/rtc';

// ---- Ingest (the broadcaster's WHIP session) ------------------------------------------------------

/** One broadcaster WHIP session (packages/rtc WhipSession). */
export interface IngestSession {
  readonly id: string;
  /** Negotiated audio / video of the publisher (the router's SourceParams). */
  readonly params: SourceParams;
  /** RTCP toward the publisher (PLI/FIR, RR). */
  readonly sourcePort: SourcePort;
  /** The one RTP handler (the buffer is only valid during the call). */
  onRtp(fn: (kind: MediaKind, packet: Uint8Array) => void): void;
  onRtcp(fn: (packet: Uint8Array) => void): void;
  on(event: 'closed', listener: (reason: string) => void): unknown;
  /** Idempotent: ends the session (ICE/DTLS/tracks). */
  close(reason?: string): void;
}

export interface IngestEndpoint {
  handle(req: HttpRequest): Promise<HttpResponse>;
  /** A POST's offer judged alone (415 / 400 / 422), before any limit; undefined when acceptable. */
  checkOffer(req: HttpRequest): HttpResponse | undefined;
  close(): void;
}

export interface IngestEndpointOptions {
  /** Path of the endpoint on this server ('/whip'); sessions live under <basePath>/sessions/<id>. */
  basePath: string;
  /** Absolute URL of the endpoint (PUBLIC_URL + basePath), for Location headers; known once listening. */
  endpointUrl: () => string;
  onSession(session: IngestSession): void;
  maxSessions: number;
  bindAddress?: string;
}
export type IngestEndpointFactory = (o: IngestEndpointOptions) => IngestEndpoint;

// ---- Stage legs (our WHIP client into each stage) -------------------------------------------------

export type LegConnectionState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

/** One WHIP client session into a stage (packages/rtc WHIPClient after start()). */
export interface LegConnection {
  /** Where the router writes this leg's rewritten RTP / RTCP. */
  readonly sinkPort: SinkPort;
  readonly state: LegConnectionState;
  on(event: 'rtcp', listener: (packet: Uint8Array) => void): unknown;
  on(event: 'state', listener: (state: LegConnectionState) => void): unknown;
  rttMs?(): number | undefined;
  /** DELETE the WHIP session (Bearer kept) and close the peer. Idempotent. */
  stop(): Promise<void>;
}

export interface LegConnectOptions {
  /** A unique id for the leg attempt (the router's sink id). */
  id: string;
  whipUrl: string;
  token: string;
  bindAddress?: string;
  timeoutMs: number;
}
/** Builds a WHIP client, POSTs the offer and resolves after the 201 (ICE may still be connecting). */
export type LegConnector = (o: LegConnectOptions) => Promise<LegConnection>;

/** The HTTP status of a WhipHttpError (or anything with a numeric status). */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'status' in err && typeof (err as { status: unknown }).status === 'number') {
    return (err as { status: number }).status;
  }
  return undefined;
}

// ---- Relay between Media Servers ---------------------------------------------------------------------

/** One relay session served by this server (the origin) to another Media Server: a router sink (packages/rtc WhepSession). */
export interface RelaySession {
  readonly id: string;
  readonly sinkPort: SinkPort;
  /** Calls fn once the session's tracks can carry packets (a sink added earlier would lose its keyframe replay). */
  onWritable(fn: () => void): void;
  /** RTCP from the puller (NACK, PLI, RR), for the router's Sink. */
  onRtcp(fn: (packet: Uint8Array) => void): void;
  on(event: 'closed', listener: (reason: string) => void): unknown;
  close(reason?: string): void;
}

export interface RelayEndpoint {
  handle(req: HttpRequest): Promise<HttpResponse>;
  readonly sessionCount: number;
  close(): void;
}

export interface RelayEndpointOptions {
  basePath: string;
  endpointUrl: () => string;
  maxSessions: number;
  /** Accepts a POST's Bearer token (constant-time comparison with MEDIA_SERVER_SECRET). */
  authorize(token: string | undefined): boolean;
  onSession(session: RelaySession): void;
  bindAddress?: string;
}
export type RelayEndpointFactory = (o: RelayEndpointOptions) => RelayEndpoint;

/** Our pull of the broadcast from the origin (packages/rtc WHEPClient after start()): a router source, like a broadcaster. */
export interface RelayConnection extends IngestSession {
  readonly state: LegConnectionState;
  readonly packetsReceived: number;
  on(event: 'closed', listener: (reason: string) => void): unknown;
  on(event: 'state', listener: (state: LegConnectionState) => void): unknown;
  /** DELETE the relay session and close the peer. Idempotent. */
  stop(): Promise<void>;
}

export interface RelayConnectOptions {
  id: string;
  /** The origin's relay endpoint: origin.url + MEDIA_ROUTES.relay. */
  url: string;
  /** MEDIA_SERVER_SECRET. */
  token: string;
  timeoutMs: number;
  bindAddress?: string;
}
/** Builds a WHEP client, POSTs the offer and resolves after the 201 (ICE may still be connecting). */
export type RelayConnector = (o: RelayConnectOptions) => Promise<RelayConnection>;
