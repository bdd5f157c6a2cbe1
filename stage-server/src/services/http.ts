/** The framework-free HTTP shapes the media endpoints take and give (packages/rtc's WHIP/WHEP endpoints use them). */
export interface MediaHttpRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface MediaHttpResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body?: string | Buffer;
}

export type MediaRole = 'whip' | 'whep';
