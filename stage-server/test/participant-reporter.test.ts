import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { localStageArn, ParticipantEventsRequestSchema, type ParticipantEvent, type ParticipantId } from '@stagecast/protocol';
import { ParticipantReporter } from '../src/services/ParticipantReporter.js';
import { waitFor } from './helpers.js';

const STAGE = localStageArn('StageAAAAAAA');
const pid = (s: string) => s as ParticipantId;

/** A fake API Server endpoint: records valid batches; `respond` decides the status of each request. */
async function fakeApi(respond: (n: number) => number = () => 204) {
  const batches: ParticipantEvent[][] = [];
  const auths: string[] = [];
  let requests = 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const status = respond(requests++);
      auths.push(req.headers.authorization ?? '');
      if (req.url === '/api/stage-server/participant-events' && status < 300) {
        batches.push(ParticipantEventsRequestSchema.parse(JSON.parse(body)).events);
      }
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/stage-server/participant-events`,
    batches,
    auths,
    requests: () => requests,
    events: () => batches.flat(),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const log = pino({ level: 'silent' });

test('joins and leaves are batched into one POST with the Bearer secret and the protocol shape', async (t) => {
  const api = await fakeApi();
  const r = new ParticipantReporter({ url: api.url, secret: 's3cret', logger: log, flushDelayMs: 50 });
  t.after(async () => {
    await r.stop();
    await api.close();
  });
  r.start();
  r.joined(STAGE, pid('v1'));
  r.joined(STAGE, pid('v2'));
  r.left(STAGE, pid('v1'));
  // The fake API records a batch before the reporter has read its response: wait for the reporter's side.
  await waitFor(() => r.stats().sent === 3, { what: '3 events delivered' });
  assert.equal(api.batches.length, 1);
  assert.deepEqual(api.auths, ['Bearer s3cret']);
  assert.deepEqual(
    api.events().map((e) => [e.participantId, e.type, e.kind, e.stageArn]),
    [
      ['v1', 'joined', 'subscriber', STAGE],
      ['v2', 'joined', 'subscriber', STAGE],
      ['v1', 'left', 'subscriber', STAGE],
    ],
  );
});

test('while the API Server fails, events are kept and retried with backoff, then delivered in order', async (t) => {
  const api = await fakeApi((n) => (n < 3 ? 503 : 204));
  const r = new ParticipantReporter({ url: api.url, secret: 's', logger: log, flushDelayMs: 10, initialBackoffMs: 20, maxBackoffMs: 80 });
  t.after(async () => {
    await r.stop();
    await api.close();
  });
  r.start();
  r.joined(STAGE, pid('a'));
  await waitFor(() => api.requests() >= 1, { what: 'first attempt' });
  r.joined(STAGE, pid('b'));
  await waitFor(() => r.stats().sent === 2, { what: 'delivery after the failures' });
  assert.equal(api.requests(), 4);
  assert.deepEqual(api.events().map((e) => e.participantId), ['a', 'b']);
  assert.equal(r.stats().failedAttempts, 3);
  assert.equal(r.stats().failureStreak, 0);
});

test('an API Server that is not there never throws; the queue is bounded and drops the oldest', async (t) => {
  const r = new ParticipantReporter({
    url: 'http://127.0.0.1:9/api/stage-server/participant-events',
    secret: 's',
    logger: log,
    flushDelayMs: 10,
    initialBackoffMs: 10,
    maxBackoffMs: 20,
    maxQueue: 5,
    stopTimeoutMs: 200,
  });
  t.after(() => r.stop());
  r.start();
  for (let i = 0; i < 12; i++) r.joined(STAGE, pid(`v${i}`));
  await waitFor(() => r.stats().failedAttempts >= 2, { what: 'retries' });
  assert.equal(r.stats().queued, 5);
  assert.equal(r.stats().dropped, 7);
  await r.stop();
  assert.equal(r.stats().queued, 5);
});

test('stop() flushes what is queued before resolving', async (t) => {
  const api = await fakeApi();
  const r = new ParticipantReporter({ url: api.url, secret: 's', logger: log, flushDelayMs: 60_000 });
  t.after(() => api.close());
  r.start();
  r.joined(STAGE, pid('x'));
  r.left(STAGE, pid('x'));
  assert.equal(api.requests(), 0);
  await r.stop();
  assert.deepEqual(api.events().map((e) => e.type), ['joined', 'left']);
});

test('a batch the API Server refuses as invalid (400) is dropped instead of blocking later events', async (t) => {
  const api = await fakeApi((n) => (n === 0 ? 400 : 204));
  const r = new ParticipantReporter({ url: api.url, secret: 's', logger: log, flushDelayMs: 10, initialBackoffMs: 10 });
  t.after(async () => {
    await r.stop();
    await api.close();
  });
  r.start();
  r.joined(STAGE, pid('bad'));
  await waitFor(() => api.requests() === 1, { what: 'the refused request' });
  r.joined(STAGE, pid('good'));
  await waitFor(() => r.stats().sent === 1, { what: 'the next batch' });
  assert.equal(api.events()[0]!.participantId, 'good');
  assert.equal(r.stats().dropped, 1);
});

test('large bursts are split into batches of at most batchSize events', async (t) => {
  const api = await fakeApi();
  const r = new ParticipantReporter({ url: api.url, secret: 's', logger: log, flushDelayMs: 10, batchSize: 100 });
  t.after(async () => {
    await r.stop();
    await api.close();
  });
  r.start();
  for (let i = 0; i < 250; i++) r.joined(STAGE, pid(`v${i}`));
  await waitFor(() => r.stats().sent === 250, { what: 'all events' });
  assert.deepEqual(api.batches.map((b) => b.length), [100, 100, 50]);
  assert.deepEqual(api.events().map((e) => e.participantId), Array.from({ length: 250 }, (_, i) => `v${i}`));
});
