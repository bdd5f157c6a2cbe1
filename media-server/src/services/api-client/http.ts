/**
 * Calls to the API Server's REST routes with the Media Server's secret: every call has a timeout, the answer is
 * validated against its protocol schema, and a failure becomes an ApiRequestError. Reachability changes are logged
 * once per change, not per call; a refused secret (401/403) once per outage, naming what to check.
 */
import type { z } from 'zod';
import type { Logger } from '../../logger.js';

/** A failed call to the API Server. status 0 = no answer (refused, timeout, bad JSON). */
export class ApiRequestError extends Error {
  constructor(
    readonly route: string,
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

export interface ApiHttpOptions {
  apiUrl: string;
  secret: string;
  requestTimeoutMs: number;
  log: Logger;
}

export class ApiHttp {
  requestErrors = 0;
  private apiReachable: boolean | undefined;
  private refusedLogged = false;

  constructor(private readonly o: ApiHttpOptions) {}

  get apiUrl(): string {
    return this.o.apiUrl;
  }

  async request<S extends z.ZodType>(route: string, method: 'GET' | 'POST', schema: S, body?: unknown): Promise<z.infer<S>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.secret}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.o.apiUrl + route, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.o.requestTimeoutMs),
      });
      text = await res.text();
    } catch (err) {
      this.requestErrors++;
      this.setReachable(false, err);
      throw new ApiRequestError(route, 0, 'UNREACHABLE', `API Server unreachable: ${(err as Error).message}`);
    }
    this.setReachable(true);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      this.requestErrors++;
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiRequestError(route, res.status, e?.code ?? 'HTTP_' + res.status, e?.message ?? `HTTP ${res.status}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      this.requestErrors++;
      throw new ApiRequestError(route, res.status, 'BAD_RESPONSE', `unexpected response from ${route}: ${parsed.error.message}`);
    }
    return parsed.data;
  }

  /** The API Server refused our secret: nothing will work until an operator fixes it, so say what to check. Once per outage. */
  logRefused(what: 'register' | 'websocket', status: number): void {
    if (this.refusedLogged) return;
    this.refusedLogged = true;
    this.o.log.error(
      { status, apiUrl: this.o.apiUrl, hint: 'check MEDIA_SERVER_SECRET: it must be the same at the API Server and the Media Server' },
      `${what}.refused`,
    );
  }

  /** The secret was accepted: a later refusal is a new outage, logged again. */
  accepted(): void {
    this.refusedLogged = false;
  }

  private setReachable(up: boolean, err?: unknown): void {
    if (this.apiReachable === up) return;
    const first = this.apiReachable === undefined;
    this.apiReachable = up;
    if (!up) this.o.log.warn({ err: (err as Error)?.message }, 'api.unreachable');
    else if (!first) this.o.log.info('api.reachable');
  }
}
