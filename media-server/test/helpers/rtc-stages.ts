/** A stand-in stage server on real WebRTC: one WhipEndpoint per stage id, tokens 'tok-*' only, recording what arrives. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WhipEndpoint, parseRtpHeader, RtpInfo, toNodeHttp, type WhipSession } from '@stagecast/rtc';

export interface StageRx {
  session: WhipSession;
  video: { seq: number; ssrc: number; at: number }[];
  audio: number;
  closed: boolean;
}

export async function startStages() {
  const rx = new Map<string, StageRx[]>();
  const endpoints = new Map<string, WhipEndpoint>();
  let base = '';
  const endpointFor = (id: string): WhipEndpoint => {
    let ep = endpoints.get(id);
    if (!ep) {
      ep = new WhipEndpoint({
        basePath: `/stages/${id}/whip`,
        endpointUrl: () => `${base}/stages/${id}/whip`,
        maxSessions: 4,
        bindAddress: '127.0.0.1',
        authorize: (t) => (t?.startsWith('tok-') ? { ok: true } : { ok: false, status: 403 }),
        onSession: (session) => {
          const r: StageRx = { session, video: [], audio: 0, closed: false };
          const info = new RtpInfo();
          session.onRtp((kind, p) => {
            if (kind === 'audio') r.audio++;
            else if (parseRtpHeader(p, p.length, info)) r.video.push({ seq: info.sequence, ssrc: info.ssrc, at: Date.now() });
          });
          session.on('closed', () => (r.closed = true));
          const list = rx.get(id) ?? [];
          list.push(r);
          rx.set(id, list);
        },
      });
      endpoints.set(id, ep);
    }
    return ep;
  };
  const server = createServer((req, res) => {
    const id = /^\/stages\/([^/]+)\/whip/.exec(req.url ?? '')?.[1];
    if (!id) {
      res.writeHead(404).end();
      return;
    }
    toNodeHttp(endpointFor(id))(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    rx,
    async close() {
      for (const ep of endpoints.values()) ep.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

