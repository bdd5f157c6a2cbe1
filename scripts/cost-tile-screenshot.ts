/**
 * The README's picture of the dashboard's cost tile. An API Server in this process, on a temporary SQLite file, is
 * seeded with bench/cost-sim's day (with consolidation): the usage of every minute up to 22:30 of that day, which is
 * made "now", and the pool of that minute as the live state (stages, seats, one connected Media Server leg each).
 * Headless Chromium (Debian's) opens /dashboard and photographs the tile into docs/img/dashboard-cost.png.
 *
 *   node --import tsx scripts/cost-tile-screenshot.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { ServerId, StageArn, StageId, ViewerId } from '@stagecast/protocol';
import { buildApp } from '../api-server/src/app.js';
import { parseConfig } from '../api-server/src/config.js';
import { createLogger } from '../api-server/src/logger.js';
import type { StageProvider } from '../api-server/src/providers/provider.js';
import { createServices } from '../api-server/src/services.js';
import { simulateDay } from '../bench/lib/day-sim.js';
import { CHROMIUM_ARGS } from '../e2e/helpers/browser.js';

const NOW_MINUTE = 22 * 60 + 30;
const KEY = 'screenshot-api-key-0123456789';
const root = join(import.meta.dirname, '..');
const dataDir = mkdtempSync(join(tmpdir(), 'sc-cost-shot-'));
const provider: StageProvider = {
  kind: 'none',
  maxCallsPerSecond: 5,
  createStage: () => Promise.reject(new Error('not here')),
  deleteStage: () => Promise.resolve(),
  listStages: () => Promise.resolve([]),
  health: () => Promise.resolve({ ok: true }),
};

const config = parseConfig({ API_SECRET_KEY: KEY, MEDIA_SERVER_SECRET: 'screenshot-media-secret', STAGE_SERVER_SECRET: 'screenshot-stage-secret-0123', DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
const s = await createServices(config, createLogger('warn'), { provider });
const app = buildApp(s);
try {
  const now = Math.floor(Date.now() / 60_000) * 60_000;
  const dayStart = now - NOW_MINUTE * 60_000;
  let live: { arn: StageArn; viewers: number; capacity: number }[] = [];
  const accruals: Promise<void>[] = [];
  simulateDay({ peak: 5000, capacity: 50, sparseRatio: 0.5, churn: 0.02, seed: 17 }, true, (m, stages) => {
    if (m > NOW_MINUTE) return;
    const t = dayStart + m * 60_000;
    accruals.push(s.store.accrueUsage(t, t + 60_000, stages.map((x) => ({ stageArn: x.arn, viewers: x.viewers, publishers: 1 }))));
    if (m === NOW_MINUTE) live = stages.map((x) => ({ arn: x.arn, viewers: x.viewers, capacity: x.capacity }));
  });
  await Promise.all(accruals);
  for (const [i, st] of live.entries()) {
    await s.store.insertStage({ arn: st.arn, id: st.arn.split('/').pop() as StageId, name: `sim-${i}`, capacity: st.capacity, state: 'active', whipUrl: 'http://127.0.0.1:1/whip', playback: { type: 'whep', url: 'http://127.0.0.1:1/whep' }, tags: {}, createdAt: now, emptySince: now });
    for (let v = 0; v < st.viewers; v++) await s.store.reserveSeat({ id: `v_sim_${i}_${v}` as ViewerId, userId: null, now }, { stageArn: st.arn });
  }
  await s.store.upsertMediaServer({ id: 'media-1' as ServerId, ip: '127.0.0.1', port: 3001, state: 'online', registeredAt: now, lastHeartbeat: Date.now(), publisherOnline: true, legs: live.map((x) => ({ stageArn: x.arn, state: 'connected' as const })) });

  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    await page.goto(`http://127.0.0.1:${port}/dashboard#key=${KEY}`);
    await page.waitForFunction(() => Number(document.body.dataset.costPolls ?? 0) >= 1, undefined, { timeout: 20_000 });
    const out = join(root, 'docs', 'img', 'dashboard-cost.png');
    await page.locator('#cost').screenshot({ path: out });
    console.log(`${out}: ${await page.locator('#cost').innerText()}`);
  } finally {
    await browser.close();
  }
} finally {
  await app.close();
  s.provider.stop();
  await s.store.close();
  rmSync(dataDir, { recursive: true, force: true });
}
