/**
 * /dashboard (x-api-key): polls GET /api/dashboard every second and shows the stages, Media Servers, the
 * broadcaster and the scaling events, with sparklines of viewers, stages and bitrate over the last two minutes.
 * The cost tile polls GET /api/cost every 10 s: participants and the estimated bill per hour now, the last 24 h, and
 * participants per minute over the last two hours.
 */
import './style.css';
import type { CostResponse, DashboardResponse } from '@stagecast/protocol';
import { $, ApiError, api, askKey, forgetKey, takeKey } from './lib/api.js';
import { Sparkline } from './lib/spark.js';
import { kbps } from './lib/stats.js';

const KEY = 'stagecast.apiKey';
const POLL_MS = 1000;
const COST_POLL_MS = 10_000;
const HOUR_MS = 3_600_000;
const charts = {
  viewers: new Sparkline($<HTMLCanvasElement>('#c-viewers')),
  stages: new Sparkline($<HTMLCanvasElement>('#c-stages'), 120, '#3fb950'),
  bitrate: new Sparkline($<HTMLCanvasElement>('#c-bitrate'), 120, '#d29922'),
  cost: new Sparkline($<HTMLCanvasElement>('#c-cost'), 120, '#a371f7'),
};
const usd = (x: number) => (x >= 100 ? `$${x.toFixed(0)}` : x >= 0.01 || x === 0 ? `$${x.toFixed(2)}` : `$${x.toFixed(4)}`);
const usage = (hours: number) => (hours >= 1 ? `${hours.toFixed(1)} participant-hours` : `${(hours * 60).toFixed(1)} participant-minutes`);

function renderCost(day: CostResponse, recent: CostResponse): void {
  const l = day.live;
  $('#k-rate').textContent = `${usd(l.costPerHour)}/h`;
  $('#k-live').textContent = `${l.participants} participants (${l.viewers} viewers + ${l.publishers} stage legs) at $${day.pricePerParticipantHour}/participant-hour`;
  $('#k-day').textContent = `Last 24 h: ${usage(day.totals.participantHours)} · ${usd(day.totals.estimatedCost)}`;
  // Per minute over the last two hours (from the first minute metered, when that is later), minutes without usage
  // as zero.
  const byMinute = new Map(recent.series.map((p) => [Date.parse(p.at), p.viewers + p.publishers]));
  const first = recent.series.length ? Date.parse(recent.series[0]!.at) : Date.parse(recent.from);
  const start = Math.floor(Math.max(first, Date.parse(recent.from)) / 60_000) * 60_000;
  const points: number[] = [];
  for (let t = start; t < Date.parse(recent.to); t += 60_000) points.push(byMinute.get(t) ?? 0);
  charts.cost.set(points);
  document.body.dataset.costPolls = String(Number(document.body.dataset.costPolls ?? 0) + 1);
}

function td(text: string, cls?: string): HTMLTableCellElement {
  const c = document.createElement('td');
  c.textContent = text;
  if (cls) c.className = cls;
  return c;
}
function pill(text: string, tone: 'ok' | 'warn' | 'bad' | ''): HTMLTableCellElement {
  const c = document.createElement('td');
  const s = document.createElement('span');
  s.className = `pill ${tone}`;
  s.textContent = text;
  c.append(s);
  return c;
}
function row(cells: HTMLTableCellElement[], attrs: Record<string, string> = {}): HTMLTableRowElement {
  const r = document.createElement('tr');
  for (const [k, v] of Object.entries(attrs)) r.dataset[k] = v;
  r.append(...cells);
  return r;
}
const ago = (iso: string, now: number) => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
};
const time = (iso: string) => new Date(iso).toLocaleTimeString();

function render(d: DashboardResponse): void {
  const now = Date.parse(d.at);
  // Each stage's leg as its owner reports it (any online server's when the stage has no owner).
  const legs = new Map<string, string>();
  for (const m of d.servers) if (m.state === 'online') for (const l of m.stages) legs.set(`${m.serverId} ${l.stageArn}`, l.state).set(l.stageArn, l.state);

  $('#t-viewers').textContent = `${d.totals.viewers} viewers`;
  $('#t-capacity').textContent = `of ${d.totals.capacity} seats · ${d.totals.connected} connected`;
  $('#t-stages').textContent = `${d.stages.length} stages`;
  const r = d.refused;
  const refused = $('#t-refused');
  refused.textContent = `Refused joins: ${r.joinsRateLimited} rate-limited · ${r.joinsCapacityExceeded} no seat${r.heartbeatsRateLimited ? ` · ${r.heartbeatsRateLimited} heartbeats rate-limited` : ''}`;
  refused.dataset.rateLimited = String(r.joinsRateLimited);
  refused.className = r.joinsRateLimited || r.joinsCapacityExceeded ? 'warn-text' : 'muted';
  const b = $('#b-state');
  b.textContent = d.broadcaster.online ? 'online' : 'offline';
  b.className = `pill ${d.broadcaster.online ? 'ok' : 'bad'}`;
  $('#b-bitrate').textContent = d.broadcaster.online ? kbps(d.broadcaster.bitrateBps) : '';
  document.body.dataset.broadcaster = d.broadcaster.online ? 'online' : 'offline';
  charts.viewers.push(d.totals.viewers);
  charts.stages.push(d.stages.length);
  charts.bitrate.push(d.broadcaster.bitrateBps);

  $('#stages tbody').replaceChildren(
    ...d.stages.map((s) => {
      const meter = document.createElement('td');
      const bar = document.createElement('div');
      bar.className = 'meter';
      bar.title = `${s.viewers} / ${s.capacity}`;
      const fill = document.createElement('span');
      fill.style.width = `${Math.min(100, (100 * s.viewers) / s.capacity)}%`;
      bar.append(fill);
      const label = document.createElement('span');
      label.textContent = `${s.viewers} / ${s.capacity}`;
      meter.append(label, bar);
      const leg = (s.mediaServerId ? legs.get(`${s.mediaServerId} ${s.stageArn}`) : legs.get(s.stageArn)) ?? 'none';
      // During a handover both servers publish: "new ← old".
      const owner = s.previousMediaServerId ? `${s.mediaServerId ?? '–'} ← ${s.previousMediaServerId}` : (s.mediaServerId ?? '–');
      return row(
        [td(s.stageId), pill(s.state, s.state === 'active' ? 'ok' : 'warn'), meter, td(String(s.connected)), td(owner), pill(leg, leg === 'connected' ? 'ok' : leg === 'connecting' ? 'warn' : 'bad'), td(time(s.createdAt))],
        { stage: s.stageId, viewers: String(s.viewers), mediaServer: s.mediaServerId ?? '', handover: s.previousMediaServerId ? 'yes' : 'no' },
      );
    }),
  );
  $('#servers tbody').replaceChildren(
    ...d.servers.map((m) => {
      const p = m.publisher;
      const stream = p ? [p.width && p.height ? `${p.width}×${p.height}` : '', p.frameRate ? `${Math.round(p.frameRate)} fps` : '', kbps(p.bitrateBps)].filter(Boolean).join(' · ') : '–';
      const up = m.stages.filter((l) => l.state === 'connected').length;
      const origin = d.origin?.serverId === m.serverId;
      const state = m.state === 'online' && m.draining ? 'draining' : m.state;
      return row(
        [td(origin ? `${m.serverId} (origin)` : m.serverId), td(m.url ?? '–'), pill(state, state === 'online' ? 'ok' : state === 'draining' ? 'warn' : 'bad'), td(ago(m.lastHeartbeat, now)), pill(m.publisherOnline ? 'online' : 'offline', m.publisherOnline ? 'ok' : ''), td(stream), td(`${up} / ${m.stages.length}`)],
        { server: m.serverId, origin: String(origin) },
      );
    }),
  );
  // STAGE_PROVIDER=local: each stage server's health as the API Server reads it (a down one has lost its stages).
  $('#stage-servers-card').hidden = !d.stageServers;
  $('#stage-servers tbody').replaceChildren(
    ...(d.stageServers ?? []).map((ss) =>
      row([td(ss.url), pill(ss.state, ss.state === 'up' ? 'ok' : 'bad'), td(time(ss.since)), td(String(ss.stages)), td(String(ss.viewers)), td(ss.lastError ?? '–')], { stageServer: ss.url, state: ss.state }),
    ),
  );
  $('#events tbody').replaceChildren(
    ...d.events.map((e) => row([td(time(e.at)), td(e.action), td(e.stageArn ? (e.stageArn.split('/').pop() ?? e.stageArn) : '–'), td(e.reason)])),
  );
  $('#updated').textContent = `Updated ${time(d.at)}`;
  document.body.dataset.polls = String(Number(document.body.dataset.polls ?? 0) + 1);
}

async function main(): Promise<void> {
  let key = takeKey(KEY);
  if (!key) {
    key = await askKey($('#auth'), 'API key (x-api-key)');
    sessionStorage.setItem(KEY, key);
  }
  const k = key;
  let timer: number | undefined;
  const tick = async () => {
    try {
      render(await api<DashboardResponse>('/api/dashboard', k));
      $('#error').textContent = '';
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        forgetKey(KEY);
        $('#error').textContent = 'The API key was not accepted; reload the page to enter it again.';
        return;
      }
      $('#error').textContent = `Cannot reach the API Server: ${(err as Error).message}`;
    }
    timer = window.setTimeout(() => void tick(), POLL_MS);
  };
  let costTimer: number | undefined;
  const costTick = async () => {
    try {
      const now = Date.now();
      const q = (from: number, step: number) => `/api/cost?from=${encodeURIComponent(new Date(from).toISOString())}&to=${encodeURIComponent(new Date(now).toISOString())}&stepMinutes=${step}`;
      const [day, recent] = await Promise.all([api<CostResponse>(q(now - 24 * HOUR_MS, 60), k), api<CostResponse>(q(now - 2 * HOUR_MS, 1), k)]);
      renderCost(day, recent);
    } catch (err) {
      $('#k-day').textContent = `Cost unavailable: ${(err as Error).message}`;
    }
    costTimer = window.setTimeout(() => void costTick(), COST_POLL_MS);
  };
  // Poll only while someone looks at the page.
  document.addEventListener('visibilitychange', () => {
    clearTimeout(timer);
    clearTimeout(costTimer);
    if (!document.hidden) {
      void tick();
      void costTick();
    }
  });
  void tick();
  void costTick();
}

void main();
