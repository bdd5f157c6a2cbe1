/**
 * What a StageRoom needs of the media plane (packages/rtc), as one port. The real adapter (rtc-plane.ts) builds it
 * from @stagecast/rtc's Router, WhipEndpoint and WhepEndpoint; tests can pass fakes. Written against the documented
 * contract of packages/rtc (core/types.ts and the transport's handle() shape).
 */
import type { MediaKind, SinkPort, SinkStats, SourcePort, SourceStats, StreamParams } from '@stagecast/rtc';
import type { MediaHttpRequest, MediaHttpResponse } from './http.js';

/** The router's view of one viewer. */
export interface RouterSink {
  handleRtcp(packet: Uint8Array): void;
  stats(): SinkStats;
  close(): void;
}

/** One source, many sinks (packages/rtc core `Router`). */
export interface MediaRouter {
  setSource(port: SourcePort, params: { audio?: StreamParams; video?: StreamParams }): void;
  clearSource(): void;
  pushRtp(kind: MediaKind, packet: Uint8Array): void;
  pushRtcp(packet: Uint8Array): void;
  addSink(port: SinkPort): RouterSink;
  sourceStats(): SourceStats;
  /** Every keyframe (IDR) from the publisher, `at` in ms of the router's clock. */
  on(event: 'keyframe', fn: (e: { at: number }) => void): unknown;
  off(event: 'keyframe', fn: (e: { at: number }) => void): unknown;
  close(): void;
}

export type AuthDecision = { ok: true } | { ok: false; status: 401 | 403 };

interface SessionBase {
  /** Unique, unguessable session id (the last segment of its Location). */
  readonly id: string;
  on(event: 'connected', fn: () => void): void;
  on(event: 'closed', fn: (reason: string) => void): void;
  close(reason?: string): void;
}

/** A publisher's WHIP session. */
export interface IngestSession extends SessionBase {
  readonly params: { audio?: StreamParams; video?: StreamParams };
  readonly sourcePort: SourcePort;
  onRtp(fn: (kind: MediaKind, packet: Uint8Array) => void): void;
  onRtcp(fn: (packet: Uint8Array) => void): void;
  bytesReceived(): number;
}

/** A viewer's WHEP session. */
export interface PlaybackSession extends SessionBase {
  readonly sinkPort: SinkPort;
  /** Calls `fn` once the session's sending tracks are open (a packet written earlier is lost). */
  onWritable(fn: () => void): void;
  /** RTCP from the viewer (PLI, NACK, RR), for the router's Sink. */
  onRtcp(fn: (packet: Uint8Array) => void): void;
}

export interface EndpointOptions<S> {
  /** Absolute URL of the endpoint (POST target); session URLs are below it. */
  endpointUrl: () => string;
  /** Path of the endpoint on this server, e.g. /stages/abc/whip. */
  basePath: string;
  maxSessions: number;
  bindAddress?: string;
  /** Called once per new session, before the 201 is sent; `token` is the Bearer the session was created with. */
  onSession(session: S, token: string): void;
}

export interface MediaEndpoint {
  handle(req: MediaHttpRequest): Promise<MediaHttpResponse>;
  /** Ends every session. Idempotent. */
  close(): Promise<void> | void;
}

export interface MediaPlane {
  createRouter(label: string): MediaRouter;
  createWhipEndpoint(opts: EndpointOptions<IngestSession>): MediaEndpoint;
  createWhepEndpoint(opts: EndpointOptions<PlaybackSession>): MediaEndpoint;
}
