/**
 * The closed list of error codes a client can get, with their HTTP status.
 * Clients switch on `error.code`, never on the message.
 */
export const ERROR_CODES = {
  INVALID_INPUT: 400,
  UNAUTHORIZED: 401, // credentials missing
  FORBIDDEN: 403, // credentials present but wrong, or not allowed
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405, // a WHIP/WHEP resource asked with a method it does not take (with Allow)
  REQUEST_TIMEOUT: 408, // the request did not arrive in time (Node's HTTP server)
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414, // a path parameter longer than the server accepts
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422, // well-formed but refused (e.g. two video tracks, a stream IVS would reject)
  PRECONDITION_REQUIRED: 428,
  PRECONDITION_FAILED: 412,
  RATE_LIMITED: 429,
  HEADERS_TOO_LARGE: 431, // request header fields too large (Node's HTTP server)
  CAPACITY_EXCEEDED: 503, // no room: every stage full and MAX_STAGES reached, or a WHIP endpoint full
  UNAVAILABLE: 503, // a dependency the answer needs is unreachable for now (the shared store, Redis): retry after Retry-After
  PROVIDER_ERROR: 502, // the stage provider (IVS, stage server) failed
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export class StagecastError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  /** Seconds a client should wait before retrying (503, 429). */
  readonly retryAfter?: number;
  constructor(code: ErrorCode, message: string, opts: { details?: unknown; retryAfter?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = opts.details;
    this.retryAfter = opts.retryAfter;
  }
  get status(): number {
    return ERROR_CODES[this.code];
  }
  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) } };
  }
}

export class InvalidInput extends StagecastError {
  constructor(message: string, details?: unknown) {
    super('INVALID_INPUT', message, { details });
  }
}
export class Unauthorized extends StagecastError {
  constructor(message = 'credentials required') {
    super('UNAUTHORIZED', message);
  }
}
export class Forbidden extends StagecastError {
  constructor(message = 'credentials not accepted') {
    super('FORBIDDEN', message);
  }
}
export class NotFound extends StagecastError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}
export class Conflict extends StagecastError {
  constructor(message: string, details?: unknown) {
    super('CONFLICT', message, { details });
  }
}
export class Unprocessable extends StagecastError {
  constructor(message: string, details?: unknown) {
    super('UNPROCESSABLE', message, { details });
  }
}
export class CapacityExceeded extends StagecastError {
  constructor(message: string, retryAfter = 5) {
    super('CAPACITY_EXCEEDED', message, { retryAfter });
  }
}
/** The request cannot be served now (the shared store is unreachable): retry after `retryAfter` s. */
export class Unavailable extends StagecastError {
  constructor(message: string, retryAfter = 2, cause?: unknown) {
    super('UNAVAILABLE', message, { retryAfter, cause });
  }
}
export class ProviderError extends StagecastError {
  constructor(message: string, cause?: unknown) {
    super('PROVIDER_ERROR', message, { cause });
  }
}

export function isStagecastError(e: unknown): e is StagecastError {
  return e instanceof StagecastError;
}
