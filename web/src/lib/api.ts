/**
 * The API Server, from a page. Keys come from the URL fragment (`#key=…`, never sent to any server log) or a
 * form, and are kept in sessionStorage only: gone when the tab closes.
 */
import type { ErrorBody } from '@stagecast/protocol';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds the server asked us to wait (Retry-After on 429 / 503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

/** Reads `#key=` once (then removes it from the address bar), else sessionStorage. */
export function takeKey(storageName: string): string | null {
  const m = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(storageName, decodeURIComponent(m[1]!));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(storageName);
}

export function forgetKey(storageName: string): void {
  sessionStorage.removeItem(storageName);
}

export async function api<T>(path: string, key: string, init: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { 'x-api-key': key };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { ...init, headers: { ...headers, ...(init.headers as Record<string, string> | undefined) } });
  if (res.status === 204) return undefined as T;
  const body = (await res.json().catch(() => null)) as T | ErrorBody | null;
  if (!res.ok) {
    const e = (body as ErrorBody | null)?.error;
    const retryAfter = Number(res.headers.get('retry-after'));
    throw new ApiError(res.status, e?.code ?? 'HTTP_' + res.status, e?.message ?? res.statusText, retryAfter > 0 ? retryAfter : undefined);
  }
  return body as T;
}

/**
 * Shows a key form inside `host` and resolves with what the person typed. The key is checked by the caller;
 * `hint` says which key (and where `npm start` printed it).
 */
export function askKey(host: HTMLElement, hint: string): Promise<string> {
  return new Promise((resolve) => {
    const form = document.createElement('form');
    form.className = 'key-form';
    form.innerHTML = `<label>${hint}<input name="key" type="password" autocomplete="off" required></label><button type="submit">Continue</button>`;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const v = (form.elements.namedItem('key') as HTMLInputElement).value.trim();
      if (!v) return;
      form.remove();
      resolve(v);
    });
    host.replaceChildren(form);
    (form.elements.namedItem('key') as HTMLInputElement).focus();
  });
}

export const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`missing element ${sel}`);
  return el;
};
