/**
 * What consolidation saves. A day-shaped audience (rising to --peak viewers in the evening and falling
 * back) is run minute by minute through the real planners — pickStage seats every join, planScaling grows and
 * shrinks the pool, planConsolidation merges sparse stages — once without consolidation and once with it. Viewers
 * leave at random (each with the same chance per minute, wherever they sit), which is what leaves stages sparse as
 * the audience falls. Prints stages over the day and participant-hours (viewers + one publisher leg per stage).
 *
 *   node --import tsx bench/cost-sim.ts [--peak=5000 --capacity=50 --sparse=0.5 --churn=0.02 --price=0.072 --seed=17]
 */
import { DEFAULT_PRICE_PER_PARTICIPANT_HOUR } from '../api-server/src/config.js';
import { simulateDay, planConfig, type DayParams, type Row } from './lib/day-sim.js';
import { arg, writeResult } from './lib/env.js';

const params: DayParams = {
  peak: Number(arg('peak', '5000')),
  capacity: Number(arg('capacity', '50')),
  sparseRatio: Number(arg('sparse', '0.5')),
  churn: Number(arg('churn', '0.02')),
  seed: Number(arg('seed', '17')),
};
const { peak, capacity, sparseRatio, churn, seed } = params;
const price = Number(arg('price', String(DEFAULT_PRICE_PER_PARTICIPANT_HOUR)));
const plan = planConfig(params);
const run = (consolidate: boolean) => simulateDay(params, consolidate);

const without = run(false);
const withC = run(true);
const sum = (rows: Row[], k: 'viewerHours' | 'publisherHours') => rows.reduce((a, r) => a + r[k], 0);
const f1 = (x: number) => x.toFixed(1);

console.log(`Day-shaped audience, peak ${peak}, STAGE_CAPACITY=${capacity}, SCALE_UP_THRESHOLD=0.8, SCALE_DOWN_COOLDOWN=60 s, churn ${churn * 100}%/min, CONSOLIDATION_SPARSE_RATIO=${sparseRatio}`);
console.log('');
console.log('| hour | audience at :00 | stages without | stages with | publisher-h without | publisher-h with | viewers moved |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (let i = 0; i < without.rows.length; i++) {
  const a = without.rows[i]!;
  const b = withC.rows[i]!;
  console.log(`| ${String(a.hour).padStart(2, '0')}:00 | ${a.audience} | ${a.stages} | ${b.stages} | ${f1(a.publisherHours)} | ${f1(b.publisherHours)} | ${b.moves} |`);
}
const totals = (r: ReturnType<typeof run>) => {
  const viewerHours = sum(r.rows, 'viewerHours');
  const publisherHours = sum(r.rows, 'publisherHours');
  return { viewerHours, publisherHours, participantHours: viewerHours + publisherHours, estimatedCost: (viewerHours + publisherHours) * price, peakStages: r.peakStages, creates: r.creates, deletes: r.deletes, viewersMoved: r.moves, viewersMovedWithoutSaving: r.movesNeutral };
};
const t0 = totals(without);
const t1 = totals(withC);
console.log('');
console.log('| over the day | without consolidation | with consolidation | saved |');
console.log('|---|---:|---:|---:|');
console.log(`| viewer-hours | ${f1(t0.viewerHours)} | ${f1(t1.viewerHours)} | |`);
console.log(`| publisher-hours (one leg per stage) | ${f1(t0.publisherHours)} | ${f1(t1.publisherHours)} | ${f1(t0.publisherHours - t1.publisherHours)} (${((100 * (t0.publisherHours - t1.publisherHours)) / t0.publisherHours).toFixed(0)} %) |`);
console.log(`| participant-hours | ${f1(t0.participantHours)} | ${f1(t1.participantHours)} | ${f1(t0.participantHours - t1.participantHours)} (${((100 * (t0.participantHours - t1.participantHours)) / t0.participantHours).toFixed(1)} %) |`);
console.log(`| estimated bill at $${price}/participant-hour | $${t0.estimatedCost.toFixed(2)} | $${t1.estimatedCost.toFixed(2)} | $${(t0.estimatedCost - t1.estimatedCost).toFixed(2)} |`);
console.log(`| peak stages | ${t0.peakStages} | ${t1.peakStages} | |`);
console.log(`| stages created / deleted | ${t0.creates} / ${t0.deletes} | ${t1.creates} / ${t1.deletes} | |`);
console.log(`| viewers moved | 0 | ${t1.viewersMoved} | |`);
console.log(`| … of them in passes that saved no stage (packing only) | | ${withC.movesNeutral} | |`);

const result = {
  bench: 'cost-sim',
  at: new Date().toISOString(),
  params: { peak, capacity, sparseRatio, churn, price, seed, plan },
  without: { ...t0, hourly: without.rows },
  with: { ...t1, hourly: withC.rows },
};
const file = writeResult('cost-sim', result);
console.log(JSON.stringify({ bench: 'cost-sim', without: t0, with: t1 }));
console.error(`written ${file}`);
