/** WHIPClient against real local servers: a 307 chain across origins that checks the Bearer at every hop. */
import assert from 'node:assert/strict';
import { shutdownRtc } from '../src/transport/peer.js';
import { after, before, describe, test } from 'node:test';
import { Router } from '../src/core/index.js';
import { SyntheticPublisher, FakeSourcePort, H264, OPUS } from '../src/core/testing.js';
import { WHIPClient, WhipEndpoint, WhipHttpError, type HttpRequest, type HttpResponse, type WhipSession } from '../src/transport/index.js';
import { serve, waitFor, type Served } from './helpers/serve.js';

const TOKEN = 'stage-publish-token';
const bearerOk = (req: HttpRequest) => req.headers.authorization === `Bearer ${TOKEN}`;

describe('WHIPClient', () => {
  let target: Served;
  let hop2: Served;
  let hop1: Served;
  let endpoint: WhipEndpoint;
  const sessions: WhipSession[] = [];
  const seen: string[] = [];
  let relativeLocation = false;

  before(async () => {
    target = await serve(async (req) => {
      seen.push(`target ${req.method} ${bearerOk(req) ? 'auth' : 'noauth'}`);
      const r = await endpoint.handle(req);
      if (relativeLocation && typeof r.headers.location === 'string') r.headers.location = new URL(r.headers.location).pathname;
      return r;
    });
    endpoint = new WhipEndpoint({
      endpointUrl: () => `${target.url}/whip`,
      basePath: '/whip',
      maxSessions: 10,
      bindAddress: '127.0.0.1',
      authorize: (t) => (t === TOKEN ? { ok: true } : { ok: false, status: t ? 403 : 401 }),
      onSession: (s) => sessions.push(s),
    });
    // Two redirecting hosts (other origins), each refusing a request that lost its Bearer token, as IVS does.
    hop2 = await serve((req): HttpResponse => {
      seen.push(`hop2 ${req.method} ${bearerOk(req) ? 'auth' : 'noauth'}`);
      if (!bearerOk(req)) return { status: 401, headers: {}, body: 'token lost on redirect' };
      return { status: 307, headers: { location: `${target.url}/whip` } };
    });
    hop1 = await serve((req): HttpResponse => {
      seen.push(`hop1 ${req.method} ${bearerOk(req) ? 'auth' : 'noauth'}`);
      if (req.url.startsWith('/found')) return { status: 302, headers: { location: `${target.url}/whip` } };
      if (req.url.startsWith('/full')) return { status: 503, headers: { 'retry-after': '7' }, body: 'busy' };
      if (!bearerOk(req)) return { status: 401, headers: {}, body: 'token lost' };
      return { status: 307, headers: { location: `${hop2.url}/next` } };
    });
  });
  after(async () => {
    endpoint.close();
    await Promise.all([target.close(), hop1.close(), hop2.close()]);
  });

  test('follows a 307 chain across hosts keeping Bearer and body, connects, and media reaches the endpoint', async () => {
    seen.length = 0;
    const client = new WHIPClient({ url: `${hop1.url}/whip`, token: TOKEN, bindAddress: '127.0.0.1' });
    const router = new Router();
    try {
      await client.start();
      assert.deepEqual(seen, ['hop1 POST auth', 'hop2 POST auth', 'target POST auth']);
      assert.equal(client.finalUrl, `${target.url}/whip`);
      assert.match(client.location!, new RegExp(`^${target.url}/whip/sessions/`));
      assert.ok(client.etag);
      assert.ok(await client.connected(), 'ICE/DTLS up');
      const session = sessions.at(-1)!;
      assert.equal(session.params.video?.payloadType, 102, 'the offer always carries H.264');
      assert.equal(session.params.audio?.payloadType, 111);
      let got = 0;
      session.onRtp(() => got++);
      // A router feeds the client's SinkPort, as the Media Server does.
      router.setSource(new FakeSourcePort(), { video: H264, audio: OPUS });
      const sink = router.addSink(client.sinkPort);
      client.on('rtcp', (p) => sink.handleRtcp(p));
      const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 1, audioSeq: 1, videoTs: 1, audioTs: 1 });
      await waitFor(async () => {
        for (const p of pub.videoFrame(pub.videoSeq < 10)) router.pushRtp('video', p);
        router.pushRtp('audio', pub.audioPacket());
        await new Promise((r) => setTimeout(r, 10));
        return got > 30;
      }, 'packets at the endpoint');
      await client.stop();
      assert.ok(seen.includes('target DELETE auth'), 'stop() sends DELETE with the Bearer');
      await waitFor(() => session.closed, 'the session ends');
      assert.equal(client.state, 'closed');
    } finally {
      router.close();
      await client.stop();
    }
  });

  test('a relative Location is resolved against the URL that answered 201', async () => {
    relativeLocation = true;
    const client = new WHIPClient({ url: `${hop1.url}/whip`, token: TOKEN, bindAddress: '127.0.0.1' });
    try {
      await client.start();
      assert.match(client.location!, new RegExp(`^${target.url}/whip/sessions/[A-Za-z0-9_-]+$`));
    } finally {
      relativeLocation = false;
      await client.stop();
    }
  });

  test('a 302 is refused; 401, 403 and 503 surface as WhipHttpError with status, body and Retry-After', async () => {
    const cases: Array<[string, string | undefined, number]> = [
      [`${hop1.url}/found`, TOKEN, 302],
      [`${target.url}/whip`, undefined, 401],
      [`${target.url}/whip`, 'wrong', 403],
      [`${hop1.url}/full?key=stream-secret-in-the-url`, TOKEN, 503],
    ];
    for (const [url, token, status] of cases) {
      const client = new WHIPClient({ url, ...(token ? { token } : {}), bindAddress: '127.0.0.1' });
      await assert.rejects(client.start(), (err: unknown) => {
        assert.ok(err instanceof WhipHttpError, String(err));
        assert.equal(err.status, status);
        if (status === 503) {
          assert.equal(err.retryAfter, 7);
          assert.equal(err.body, 'busy');
        }
        // The message goes to logs and the stats page: the URL's path and query (a credential at some servers) stay out.
        assert.ok(!err.message.includes('stream-secret') && !err.message.includes('/full') && !err.message.includes('/whip'), err.message);
        assert.match(err.message, /from http:\/\/127\.0\.0\.1:\d+\/…/);
        return true;
      });
      assert.equal(client.state, 'failed');
      await client.stop();
    }
  });
});

after(() => shutdownRtc());
