/**
 * A publisher that vanishes (process killed: no DELETE, no DTLS close_notify) is closed by the endpoint. libjuice's
 * ICE consent takes ~30 s to fail such a peer, so the endpoint's media timeout (here 600 ms) ends it first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { shutdownRtc } from '../src/transport/peer.js';
import { WhipEndpoint, type WhipSession } from '../src/transport/index.js';
import { serve, waitFor } from './helpers/serve.js';

test('a WHIP publisher killed mid-stream is closed with reason "media timeout", its stats counted, and its room freed', async () => {
  const sessions: WhipSession[] = [];
  let base = '';
  const endpoint = new WhipEndpoint({ endpointUrl: () => base, basePath: '/whip', maxSessions: 1, bindAddress: '127.0.0.1', mediaTimeoutMs: 600, onSession: (s) => sessions.push(s) });
  const srv = await serve((r) => endpoint.handle(r));
  base = `${srv.url}/whip`;
  const script = fileURLToPath(new URL('./helpers/vanishing-publisher.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, base], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('published') || out.includes('refused'), 'the child publishes', 20_000);
    assert.match(out, /^published /);
    const s = sessions[0]!;
    await waitFor(() => s.packetsReceived >= 20, 'RTP from the child');
    const st = s.stats();
    assert.equal(st.state, 'connected');
    assert.ok(st.packetsReceived! >= 20 && st.bytesReceived > 0 && s.bytesReceived() > 0, JSON.stringify(st));
    assert.match(st.selectedPair?.remote ?? '', /^127\.0\.0\.1:\d+$/);
    let reason = '';
    s.once('closed', (r) => (reason = r));
    child.kill('SIGKILL');
    await waitFor(() => s.closed, 'the endpoint closes the vanished session', 5000);
    assert.equal(reason, 'media timeout');
    assert.equal(endpoint.sessionCount, 0, 'the room is free again');
  } finally {
    child.kill('SIGKILL');
    endpoint.close();
    await srv.close();
  }
});

after(() => shutdownRtc());
