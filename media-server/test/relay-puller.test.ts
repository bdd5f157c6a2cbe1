/** RelayPuller with a fake relay transport: whom it pulls from, make-before-break on an origin change, backoff, stop. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Origin } from '@stagecast/protocol';
import type { IngestSession, LegConnectionState, RelayConnection, RelayConnectOptions } from '../src/media/ports.js';
import { RelayPuller } from '../src/services/RelayPuller.js';
import { FakeIngestSession } from './helpers/fakes.js';
import { testLogger } from './helpers/log.js';
import { waitFor } from './helpers/wait.js';

class FakeRelayConnection extends FakeIngestSession implements RelayConnection {
  state: LegConnectionState = 'connecting';
  packetsReceived = 0;
  stopped = false;
  constructor(readonly opts: RelayConnectOptions) {
    super();
  }
  setState(s: LegConnectionState): void {
    this.state = s;
    this.emit('state', s);
  }
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.close('stopped');
  }
}

const O1: Origin = { serverId: 'ms-1' as Origin['serverId'], url: 'http://10.0.0.1:3001' };
const O2: Origin = { serverId: 'ms-2' as Origin['serverId'], url: 'http://10.0.0.2:3001/' };

function rig() {
  const conns: FakeRelayConnection[] = [];
  let fail = 0;
  const feed = { current: undefined as IngestSession | undefined, connected: [] as IngestSession[] };
  let target: Origin | null = null;
  const { log, logs } = testLogger('info');
  const puller = new RelayPuller({
    target: () => target,
    connect: async (o) => {
      await Promise.resolve();
      if (fail > 0) {
        fail--;
        throw Object.assign(new Error('connect ECONNREFUSED'), { status: 0 });
      }
      const c = new FakeRelayConnection(o);
      conns.push(c);
      return c;
    },
    feed: {
      onPublisherConnected: (s) => {
        feed.current = s;
        feed.connected.push(s);
      },
      onPublisherDisconnected: (s) => {
        if (!s || feed.current === s) feed.current = undefined;
      },
    },
    secret: 'media-secret-0123456789',
    log,
    requestTimeoutMs: 1000,
    connectTimeoutMs: 2000,
    backoff: { baseMs: 40, capMs: 200 },
    random: () => 0.5,
  });
  return {
    puller,
    conns,
    feed,
    logs,
    setTarget: (o: Origin | null) => {
      target = o;
      puller.evaluate();
    },
    failNext: (n: number) => (fail = n),
  };
}

test('pulls from the target with the secret, feeds the router once connected, and switches origin make-before-break', async () => {
  const r = rig();
  try {
    r.setTarget(O1);
    await waitFor(() => r.conns.length === 1, { what: 'a relay session' });
    assert.equal(r.conns[0]!.opts.url, 'http://10.0.0.1:3001/relay/whep');
    assert.equal(r.conns[0]!.opts.token, 'media-secret-0123456789');
    assert.equal(r.feed.current, undefined, 'not a source before it is connected');
    assert.equal(r.puller.stats().state, 'connecting');
    r.conns[0]!.setState('connected');
    assert.equal(r.feed.current, r.conns[0]);
    assert.equal(r.puller.pullingFrom, 'ms-1');
    r.puller.evaluate();
    assert.equal(r.conns.length, 1, 'the same target: nothing to do');

    r.setTarget(O2);
    await waitFor(() => r.conns.length === 2, { what: 'a relay session to the new origin' });
    assert.equal(r.conns[1]!.opts.url, 'http://10.0.0.2:3001/relay/whep');
    assert.equal(r.feed.current, r.conns[0], 'the old relay feeds until the new one is connected');
    assert.equal(r.conns[0]!.stopped, false);
    r.conns[1]!.setState('connected');
    assert.equal(r.feed.current, r.conns[1]);
    assert.equal(r.conns[0]!.stopped, true, 'then the old one is DELETEd');
    assert.equal(r.puller.stats().switches, 1);

    r.setTarget(null);
    assert.equal(r.feed.current, undefined);
    assert.equal(r.conns[1]!.stopped, true);
    assert.equal(r.puller.stats().state, 'idle');
  } finally {
    r.puller.stop();
  }
});

test('an unreachable origin is retried with growing delays, not in a storm; a new target is tried at once', async () => {
  const r = rig();
  try {
    r.failNext(1000);
    r.setTarget(O1);
    await waitFor(() => r.puller.stats().failures >= 4, { what: 'four failures', timeoutMs: 3000 });
    const s = r.puller.stats();
    assert.equal(s.state, 'retrying');
    assert.ok(s.reconnects >= 3);
    // With delays of 30, 60, 120, 150 ms (equal jitter at 0.5), four failures take ≥ 200 ms: no tight loop.
    const before = r.puller.stats().pulls;
    await new Promise((x) => setTimeout(x, 100));
    assert.ok(r.puller.stats().pulls - before <= 1, 'at most one attempt per backoff step');
    r.failNext(0);
    r.setTarget(O2);
    await waitFor(() => r.conns.length === 1, { what: 'the new origin tried at once' });
    assert.equal(r.conns[0]!.opts.url, 'http://10.0.0.2:3001/relay/whep');
  } finally {
    r.puller.stop();
  }
});

test('a relay that drops while feeding is reported and pulled again; stop() ends it for good', async () => {
  const r = rig();
  try {
    r.setTarget(O1);
    await waitFor(() => r.conns.length === 1, { what: 'relay' });
    r.conns[0]!.setState('connected');
    r.conns[0]!.close('peer closed');
    assert.equal(r.feed.current, undefined, 'the router loses the source');
    assert.equal(r.logs.count('relay.failed'), 1);
    await waitFor(() => r.conns.length === 2, { what: 'pulled again after the backoff' });
    r.conns[1]!.setState('connected');
    assert.equal(r.feed.current, r.conns[1]);
    r.puller.stop();
    assert.equal(r.conns[1]!.stopped, true);
    r.puller.evaluate();
    await new Promise((x) => setTimeout(x, 100));
    assert.equal(r.conns.length, 2, 'nothing after stop()');
  } finally {
    r.puller.stop();
  }
});
