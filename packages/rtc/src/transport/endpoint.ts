/**
 * The HTTP side of WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep), framework-free: POST creates a session,
 * PATCH trickles candidates, DELETE ends it, OPTIONS answers CORS. The media side is a strategy: `createSession`.
 */
import { bearerToken, secretEquals } from '@stagecast/service/auth';
import { contentType, header, iceServerLinks, problem, type HttpRequest, type HttpResponse, type IceServerConfig } from './http.js';
import type { MediaSessionBase } from './session.js';
import { parseSdp, parseSdpFrag, SdpError, type SessionDescription } from './sdp.js';

export type AuthDecision = { ok: true } | { ok: false; status: 401 | 403; message?: string };

export interface EndpointOptions<S> {
  /** Absolute URL of the endpoint (the POST target); session URLs are below it. */
  endpointUrl: () => string;
  /** Path of the endpoint on this server, e.g. /whip or /stages/abc/whep. */
  basePath: string;
  maxSessions: number;
  /** Bind ICE to one address (tests on 127.0.0.1); unset = gather on every interface. */
  bindAddress?: string;
  /**
   * ICE servers offered to clients in Link headers (RFC 9725 §4.6). The endpoint's own peers do not use them: a
   * media server is expected to be reachable on its host candidates.
   */
  iceServers?: readonly IceServerConfig[];
  /** Checks the Bearer token of a POST; omit when the caller authorises before handle(). */
  authorize?: (token: string | undefined, req: HttpRequest) => AuthDecision | Promise<AuthDecision>;
  /** Called once per new session, before the 201 is sent. */
  onSession(session: S, token: string): void;
  gatherTimeoutMs?: number;
  /** Seconds a client is told to wait when the endpoint is full. */
  retryAfterSec?: number;
}

/** A refusal of the offer with its HTTP status (400 malformed, 422 well-formed but not acceptable). */
export class OfferRejected extends Error {
  constructor(
    readonly status: 400 | 422,
    message: string,
  ) {
    super(message);
  }
}

export type SessionFactory<S extends MediaSessionBase> = (offer: string, sd: SessionDescription) => Promise<{ session: S; answer: string }>;
/** Judges a parsed offer without side effects; throws OfferRejected. */
export type OfferCheck = (sd: SessionDescription) => void;

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After',
};
const ALLOW = 'OPTIONS, GET, POST, PATCH, DELETE';

export class SignallingEndpoint<S extends MediaSessionBase> {
  private readonly sessions = new Map<string, S>();
  private pending = 0;
  private closed = false;

  constructor(
    private readonly o: EndpointOptions<S>,
    private readonly factory: SessionFactory<S>,
    private readonly check: OfferCheck = () => undefined,
  ) {}

  /**
   * The offer of a POST, judged before any limit: 415 for another media type, 400 for SDP that does not parse or
   * lacks ICE/DTLS parameters, 422 for one we would refuse. Undefined when acceptable. Callers with limits of their
   * own (the Media Server's one-broadcaster rule) call it first, so a malformed offer never gets 409 or 503.
   */
  checkOffer(req: HttpRequest): HttpResponse | undefined {
    return this.parseOffer(req).refused;
  }

  private parseOffer(req: HttpRequest): { refused: HttpResponse; sd?: undefined; offer?: undefined } | { refused?: undefined; sd: SessionDescription; offer: string } {
    if (contentType(req) !== 'application/sdp') {
      return { refused: problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/sdp', { 'accept-post': 'application/sdp' }) };
    }
    const offer = req.body.toString('utf8');
    let sd: SessionDescription;
    try {
      sd = parseSdp(offer);
      this.check(sd);
    } catch (err) {
      if (err instanceof OfferRejected) return { refused: problem(err.status, err.status === 400 ? 'INVALID_INPUT' : 'UNPROCESSABLE', err.message) };
      return { refused: problem(400, 'INVALID_INPUT', err instanceof SdpError ? `bad SDP offer: ${err.message}` : 'bad SDP offer') };
    }
    return { sd, offer };
  }

  get sessionCount(): number {
    return this.sessions.size;
  }
  get(id: string): S | undefined {
    return this.sessions.get(id);
  }
  list(): S[] {
    return [...this.sessions.values()];
  }

  async handle(req: HttpRequest): Promise<HttpResponse> {
    const res = await this.route(req).catch((err: unknown) => problem(500, 'INTERNAL', err instanceof Error ? err.message : 'internal error'));
    res.headers = { ...CORS, ...res.headers };
    return res;
  }

  private async route(req: HttpRequest): Promise<HttpResponse> {
    const path = req.url.split('?')[0]!;
    const base = this.o.basePath.replace(/\/+$/, '');
    if (path === base || path === base + '/') {
      switch (req.method) {
        case 'POST':
          return this.post(req);
        case 'OPTIONS':
          return this.options(req);
        case 'GET':
        case 'HEAD':
          return { status: 204, headers: {} };
        default:
          return problem(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, { allow: 'OPTIONS, GET, POST' });
      }
    }
    const prefix = base + '/sessions/';
    if (!path.startsWith(prefix)) return problem(404, 'NOT_FOUND', 'no such resource');
    const session = this.sessions.get(path.slice(prefix.length));
    if (!session) return problem(404, 'NOT_FOUND', 'no such session');
    switch (req.method) {
      case 'DELETE': {
        const refused = this.checkSessionToken(req, session);
        if (refused) return refused;
        session.close('deleted by client');
        return { status: 200, headers: {} };
      }
      case 'PATCH': {
        const refused = this.checkSessionToken(req, session);
        return refused ?? this.patch(req, session);
      }
      case 'OPTIONS':
        // A browser's PATCH or DELETE with a Bearer token is preflighted here.
        return {
          status: 204,
          headers: {
            allow: 'OPTIONS, GET, PATCH, DELETE',
            'access-control-allow-methods': ALLOW,
            'access-control-allow-headers': 'Authorization, Content-Type, If-Match',
            'access-control-max-age': '600',
            'accept-patch': 'application/trickle-ice-sdpfrag',
          },
        };
      case 'GET':
      case 'HEAD':
        return { status: 204, headers: {} };
      default:
        return problem(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on a session`, { allow: 'OPTIONS, GET, PATCH, DELETE' });
    }
  }

  private options(req: HttpRequest): HttpResponse {
    const headers: Record<string, string | string[]> = {
      allow: 'OPTIONS, GET, POST',
      'access-control-allow-methods': ALLOW,
      'access-control-allow-headers': 'Authorization, Content-Type, If-Match',
      'access-control-max-age': '600',
      'accept-post': 'application/sdp',
    };
    // ICE servers are not given on a CORS preflight (RFC 9725 §4.6).
    const preflight = header(req, 'access-control-request-method') !== undefined;
    if (!preflight && this.o.iceServers?.length) headers.link = iceServerLinks(this.o.iceServers);
    return { status: 204, headers };
  }

  /** PATCH and DELETE carry the Bearer token the session was created with (RFC 9725 §4.7). */
  private checkSessionToken(req: HttpRequest, session: S): HttpResponse | undefined {
    if (!session.token) return undefined;
    const given = bearerToken(header(req, 'authorization'));
    if (given === undefined || given === '') return problem(401, 'UNAUTHORIZED', 'bearer token required', { 'www-authenticate': 'Bearer' });
    if (!secretEquals(given, session.token)) return problem(403, 'FORBIDDEN', 'not the token of this session');
    return undefined;
  }

  private async post(req: HttpRequest): Promise<HttpResponse> {
    if (this.closed) return problem(503, 'CAPACITY_EXCEEDED', 'endpoint closing', { 'retry-after': String(this.o.retryAfterSec ?? 5) });
    const token = bearerToken(header(req, 'authorization'));
    if (this.o.authorize) {
      const d = await this.o.authorize(token === '' ? undefined : token, req);
      if (!d.ok) {
        return d.status === 401
          ? problem(401, 'UNAUTHORIZED', d.message ?? 'bearer token required', { 'www-authenticate': 'Bearer' })
          : problem(403, 'FORBIDDEN', d.message ?? 'token not accepted');
      }
    }
    // The offer first: a malformed one is the client's error (400) whether or not there is room.
    const parsed = this.parseOffer(req);
    if (parsed.refused) return parsed.refused;
    const { offer, sd } = parsed;
    if (this.sessions.size + this.pending >= this.o.maxSessions) {
      return problem(503, 'CAPACITY_EXCEEDED', 'no room for another session', { 'retry-after': String(this.o.retryAfterSec ?? 5) });
    }
    this.pending++;
    let created: { session: S; answer: string };
    try {
      created = await this.factory(offer, sd);
    } catch (err) {
      if (err instanceof OfferRejected) return problem(err.status, err.status === 400 ? 'INVALID_INPUT' : 'UNPROCESSABLE', err.message);
      return problem(400, 'INVALID_INPUT', `offer not accepted: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.pending--;
    }
    const { session, answer } = created;
    if (this.closed) {
      session.close('endpoint closed');
      return problem(503, 'CAPACITY_EXCEEDED', 'endpoint closing', { 'retry-after': String(this.o.retryAfterSec ?? 5) });
    }
    session.token = token ?? '';
    this.sessions.set(session.id, session);
    session.once('closed', () => this.sessions.delete(session.id));
    this.o.onSession(session, token ?? '');
    const location = `${this.o.endpointUrl().replace(/\/+$/, '')}/sessions/${session.id}`;
    const headers: Record<string, string | string[]> = {
      'content-type': 'application/sdp',
      location,
      etag: session.etag,
      'accept-patch': 'application/trickle-ice-sdpfrag',
    };
    if (this.o.iceServers?.length) headers.link = iceServerLinks(this.o.iceServers);
    return { status: 201, headers, body: answer };
  }

  private patch(req: HttpRequest, session: S): HttpResponse {
    if (contentType(req) !== 'application/trickle-ice-sdpfrag') {
      return problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/trickle-ice-sdpfrag', { 'accept-patch': 'application/trickle-ice-sdpfrag' });
    }
    const ifMatch = header(req, 'if-match');
    if (ifMatch === undefined) return problem(428, 'PRECONDITION_REQUIRED', 'If-Match is required');
    if (ifMatch.trim() !== '*' && ifMatch.trim() !== session.etag) return problem(412, 'PRECONDITION_FAILED', 'ETag does not match the ICE session');
    let frag;
    try {
      frag = parseSdpFrag(req.body.toString('utf8'));
    } catch (err) {
      return problem(400, 'INVALID_INPUT', err instanceof SdpError ? `bad sdpfrag: ${err.message}` : 'bad sdpfrag');
    }
    const restart = frag.iceUfrag !== undefined && frag.iceUfrag !== session.remoteUfrag;
    if (restart) {
      // libdatachannel cannot restart ICE on a live PeerConnection; RFC 9725 §4.3.1/§4.3.3: refuse, keep the session.
      return problem(422, 'UNPROCESSABLE', 'ICE restart is not supported; the session continues (start a new session to restart)');
    }
    session.addRemoteCandidates(frag);
    return { status: 204, headers: {} };
  }

  /** Ends every session and refuses new ones. Idempotent. */
  close(): void {
    this.closed = true;
    for (const s of [...this.sessions.values()]) s.close('endpoint closed');
    this.sessions.clear();
  }
}
