/** The node:http and Fastify adapters hand the raw exchange to the endpoint: its own 415/413, headers and media. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import Fastify from 'fastify';
import { shutdownRtc } from '../src/transport/peer.js';
import { toFastify, toNodeHttp, WhipEndpoint, type WhipSession } from '../src/transport/index.js';
import { ObsLikePublisher } from './helpers/obs.js';
import { waitFor } from './helpers/serve.js';

const newEndpoint = (base: () => string, sessions: WhipSession[]) =>
  new WhipEndpoint({
    endpointUrl: () => `${base()}/ingest/whip`,
    basePath: '/ingest/whip',
    maxSessions: 2,
    bindAddress: '127.0.0.1',
    iceServers: [{ urls: 'stun:127.0.0.1:3478' }, { urls: 'turn:127.0.0.1:3478?transport=udp', username: 'u', credential: 'p' }],
    onSession: (s) => sessions.push(s),
  });

async function publishAndCount(url: string, sessions: WhipSession[]): Promise<void> {
  const obs = new ObsLikePublisher();
  try {
    const res = await obs.publish(url);
    assert.equal(res.status, 201);
    assert.ok(await obs.peer.connected(), 'connects');
    let n = 0;
    sessions.at(-1)!.onRtp(() => n++);
    obs.startMedia();
    await waitFor(() => n >= 10, 'RTP through the adapter-made session');
    const del = await fetch(obs.location!, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await waitFor(() => sessions.at(-1)!.closed, 'DELETE closes the session');
  } finally {
    await obs.stop();
  }
}

describe('HTTP adapters', () => {
  test('Fastify: routes POST/PATCH/DELETE/OPTIONS to the endpoint with raw bodies; 415 and Link headers come from the endpoint', async () => {
    const app = Fastify();
    const sessions: WhipSession[] = [];
    let base = '';
    const endpoint = newEndpoint(() => base, sessions);
    try {
      await toFastify(app, endpoint, '/ingest/whip');
      base = await app.listen({ port: 0, host: '127.0.0.1' });
      const wrong = await fetch(`${base}/ingest/whip`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
      assert.equal(wrong.status, 415, 'a JSON body is not parsed by Fastify; the endpoint refuses its type');
      assert.equal(wrong.headers.get('accept-post'), 'application/sdp');
      const opt = await fetch(`${base}/ingest/whip`, { method: 'OPTIONS' });
      assert.equal(opt.status, 204);
      assert.equal(opt.headers.get('link')?.split(', <').length, 2, 'one Link header per ICE server');
      const big = await fetch(`${base}/ingest/whip`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n'.repeat(60_000) });
      assert.equal(big.status, 413);
      assert.equal((await fetch(`${base}/ingest/whip/sessions/nope`, { method: 'DELETE' })).status, 404);
      await publishAndCount(`${base}/ingest/whip`, sessions);
    } finally {
      endpoint.close();
      await app.close();
    }
  });

  test('node:http: toNodeHttp serves the endpoint, refuses an oversized body with 413, and media flows', async () => {
    const sessions: WhipSession[] = [];
    let base = '';
    const endpoint = newEndpoint(() => base, sessions);
    const server: Server = createServer(toNodeHttp(endpoint));
    try {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const big = await fetch(`${base}/ingest/whip`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n'.repeat(60_000) });
      assert.equal(big.status, 413);
      const get = await fetch(`${base}/ingest/whip`);
      assert.equal(get.status, 204);
      await publishAndCount(`${base}/ingest/whip`, sessions);
    } finally {
      endpoint.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

after(() => shutdownRtc());
