import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JoinRate, SeatGrowth } from '../src/services/JoinRate.js';

test('JoinRate: a storm reads as a storm within its first tenth of a second, and fades once it is over', () => {
  const r = new JoinRate(2000, 250);
  assert.equal(r.perSecond(0), 0);
  // 1,000 joins/s: one a millisecond for 100 ms.
  for (let t = 10_000; t < 10_100; t++) r.note(t);
  assert.ok(r.perSecond(10_100) >= 350, `after 100 ms: ${r.perSecond(10_100)}`);
  for (let t = 10_100; t < 11_000; t++) r.note(t);
  const steady = r.perSecond(11_000);
  assert.ok(steady > 900 && steady <= 1000, `after 1 s: ${steady}`);
  // Nothing for longer than the window: 0.
  assert.equal(r.perSecond(13_100), 0);
});

test('JoinRate: a single join is a trickle, not a storm (the span is at least minSpanMs)', () => {
  const r = new JoinRate(2000, 250);
  r.note(5000);
  assert.equal(r.perSecond(5000), 4);
  r.note(5600);
  assert.ok(r.perSecond(5600) < 4, `two joins 600 ms apart: ${r.perSecond(5600)}`);
});

test('SeatGrowth: seats per second over the last window of readings; too short a span or a fall reads 0', () => {
  const g = new SeatGrowth(1000, 200);
  assert.equal(g.note(0, 0), 0);
  assert.equal(g.note(100, 100), 0, 'only 100 ms of readings');
  assert.equal(g.note(500, 500), 1000);
  assert.equal(g.note(1400, 1400), 1000, 'readings older than the window are dropped');
  assert.equal(g.note(2000, 900), 0, 'seats falling (viewers leaving) is no growth');
});
