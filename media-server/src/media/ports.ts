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
