import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { ConfigError, createServiceLogger, EXIT_CONFIG, loadConfigOrExit, runProcess, type ProcessLike } from '../src/index.js';

class FakeProcess extends EventEmitter implements ProcessLike {
  exits: number[] = [];
  private resolve: (code: number) => void = () => undefined;
  exited = new Promise<number>((r) => (this.resolve = r));
  exit(code: number): void {
    this.exits.push(code);
    this.resolve(code);
  }
}

function logCapture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(c.toString())), done()) });
  return { log: createServiceLogger('test', 'info', { destination }), lines, events: () => lines.map((l) => l.msg) };
}

test('runProcess starts the parts in order and, on SIGTERM, stops them in reverse order, then exits 0', async () => {
  const proc = new FakeProcess();
  const { log, events } = logCapture();
  const order: string[] = [];
  const part = (name: string) => ({ name, start: () => void order.push(`start ${name}`), stop: async () => void order.push(`stop ${name}`) });
  await runProcess({ log, proc, parts: [part('rtc'), part('store'), part('server')] });
  assert.deepEqual(order, ['start rtc', 'start store', 'start server']);
  proc.emit('SIGTERM');
  proc.emit('SIGINT'); // a second signal does not stop twice
  assert.equal(await proc.exited, 0);
  assert.deepEqual(order.slice(3), ['stop server', 'stop store', 'stop rtc']);
  assert.deepEqual(proc.exits, [0]);
  assert.ok(events().includes('process.stopping'));
});

test('runProcess: a stop that outlives its deadline is logged and exits 1', async () => {
  const proc = new FakeProcess();
  const { log, events } = logCapture();
  await runProcess({ log, proc, stopTimeoutMs: 50, parts: [{ name: 'stuck', stop: () => new Promise(() => undefined) }] });
  const keepAlive = setTimeout(() => undefined, 5000); // the deadline timer is unref'd, as in a real process
  proc.emit('SIGINT');
  assert.equal(await proc.exited, 1);
  clearTimeout(keepAlive);
  assert.ok(events().includes('process.stop_timeout'));
});

test('runProcess: a part that fails to stop does not keep the others from stopping; exit 1', async () => {
  const proc = new FakeProcess();
  const { log, lines } = logCapture();
  const stopped: string[] = [];
  await runProcess({
    log,
    proc,
    parts: [
      { name: 'a', stop: () => void stopped.push('a') },
      { name: 'b', stop: () => Promise.reject(new Error('boom')) },
    ],
  });
  proc.emit('SIGTERM');
  assert.equal(await proc.exited, 1);
  assert.deepEqual(stopped, ['a']);
  assert.ok(lines.some((l) => l.msg === 'process.stop_failed' && l.part === 'b'));
});

test('runProcess: an uncaught exception or unhandled rejection is logged (fatal) and stops the process, exit 1', async () => {
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    const proc = new FakeProcess();
    const { log, lines } = logCapture();
    let stopped = false;
    await runProcess({ log, proc, parts: [{ name: 'server', stop: () => void (stopped = true) }] });
    proc.emit(event, new Error('oops'));
    assert.equal(await proc.exited, 1);
    assert.ok(stopped);
    const fatal = lines.find((l) => l.level === 60);
    assert.ok(fatal, `${event} logged as fatal`);
    assert.match(JSON.stringify(fatal), /oops/);
  }
});

test('runProcess: a part that fails to start stops what had started (in reverse) and exits 1; later parts never start', async () => {
  const proc = new FakeProcess();
  const { log, events } = logCapture();
  const order: string[] = [];
  await runProcess({
    log,
    proc,
    parts: [
      { name: 'a', start: () => void order.push('start a'), stop: () => void order.push('stop a') },
      { name: 'b', start: () => Promise.reject(new Error('port in use')), stop: () => void order.push('stop b') },
      { name: 'c', start: () => void order.push('start c'), stop: () => void order.push('stop c') },
    ],
  });
  assert.equal(await proc.exited, 1);
  assert.deepEqual(order, ['start a', 'stop b', 'stop a']);
  assert.ok(events().includes('process.start_failed'));
});

test('loadConfigOrExit: a ConfigError prints its message and exits 78; other errors are thrown', () => {
  const proc = new FakeProcess();
  const printed: string[] = [];
  class AppConfigError extends ConfigError {}
  loadConfigOrExit(() => {
    throw new AppConfigError('invalid configuration: PORT must be a number');
  }, proc, (s) => printed.push(s));
  assert.deepEqual(proc.exits, [EXIT_CONFIG]);
  assert.deepEqual(printed, ['invalid configuration: PORT must be a number']);
  assert.throws(() => loadConfigOrExit(() => { throw new TypeError('bug'); }, proc), TypeError);
  assert.equal(loadConfigOrExit(() => ({ port: 1 }), proc).port, 1);
});
