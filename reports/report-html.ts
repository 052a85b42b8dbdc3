// report.html: one self-contained page per run. A header with the verdict, the three findings, the
// thresholds and key figures, then a section per area with plots on one time axis (seconds since
// the scenarios started): HTTP per route, fan-out, hotspots (heatmaps per logical-shard band and
// per physical server), caches, replicas; every threshold drawn on the plot of what it judges, and
// the run's events on every time axis. A pure function of result.json.

import { formatSeconds, formatValue, num, type Unit } from '../scenarios/runner/format.ts';
import type { SeriesEntry } from '../scenarios/runner/k6-metrics.ts';
import { durationText, keyFigures, naturalCompare, observedText, timesText, type KeyFigures } from '../scenarios/runner/key-figures.ts';
import { bucketValues, findSeries, seriesBuckets, telemetryX, telemetryXY, timeline, type Bucket, type BucketStat, type Timeline, type XY } from '../scenarios/runner/time-axis.ts';
import { LAG_WINDOW_MS } from '../sim/observability/telemetry.ts';
import { cacheNodeDeadText, cacheNodeState, findings, iterationErrorsText, worstText } from './findings.ts';
import { page } from './html/page.ts';
import type { ResultDocument } from './load-result.ts';
import { markers as runMarkers, routeNames, thin, thresholdLines, thresholdsOn, type Marker, type ThresholdLine } from './plots/data.ts';
import { esc } from './plots/format.ts';
import { heatmap, lineChart, PALETTE, type ChartSeries, type HeatCell } from './plots/svg.ts';
import { simulationTexts, verdictText } from './report-md.ts';

/** Most points a line keeps, and most columns and rows a heatmap keeps (long runs merge neighbours). */
const MAX_POINTS = 720;
const MAX_HEAT_COLUMNS = 240;
const MAX_HEAT_ROWS = 64;

interface Ctx {
  r: ResultDocument;
  k: KeyFigures;
  tl: Timeline;
  x: [number, number];
  buckets: Bucket[];
  markers: Marker[];
  thresholds: ThresholdLine[];
  /** Thresholds drawn so far: the rest get a plot of their own. */
  drawn: Set<ThresholdLine>;
  /** data-plot id of the plot that drew each threshold, for links from the table. */
  drawnOn: Map<ThresholdLine, string>;
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : formatValue(v, 'ratio'));
const ms = (v: number | null | undefined) => (v === null || v === undefined ? '–' : formatValue(v, 'ms'));

function plotId(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'plot';
}

function take(ctx: Ctx, id: string, lines: ThresholdLine[]): ThresholdLine[] {
  for (const l of lines) {
    ctx.drawn.add(l);
    if (!ctx.drawnOn.has(l)) ctx.drawnOn.set(l, id);
  }
  return lines;
}

function chart(ctx: Ctx, spec: { id: string; title: string; subtitle?: string; unit: Unit; series: ChartSeries[]; thresholds?: ThresholdLine[]; log?: boolean; yMin?: number; yMax?: number; thinBy?: 'mean' | 'max' }, emptyWhy?: string): string {
  const series = spec.series.map((s) => ({ ...s, points: thin(s.points, MAX_POINTS, spec.thinBy ?? 'mean') }));
  const has = series.some((s) => s.points.length > 0);
  const thresholds = has ? take(ctx, spec.id, spec.thresholds ?? []) : [];
  return lineChart({ id: spec.id, title: spec.title, ...(spec.subtitle ? { subtitle: spec.subtitle } : {}), unit: spec.unit, series, thresholds, markers: ctx.markers, x: ctx.x, ...(spec.log ? { log: true } : {}), ...(spec.yMin !== undefined ? { yMin: spec.yMin } : {}), ...(spec.yMax !== undefined ? { yMax: spec.yMax } : {}) }, emptyWhy);
}

function seriesXY(ctx: Ctx, s: SeriesEntry | undefined, stat: BucketStat): XY[] {
  return s ? bucketValues(s, ctx.buckets, stat) : [];
}

/** A two-column table of facts, without a header. */
function facts(rows: Array<[string, string]>): string {
  return `<table class="kv"><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</tbody></table>`;
}

function table(head: Array<string | [string, 'r']>, rows: string[][]): string {
  const right = head.map((h) => Array.isArray(h));
  const th = head.map((h) => (Array.isArray(h) ? `<th class="r">${esc(h[0])}</th>` : `<th>${esc(h)}</th>`)).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${right[i] ? ' class="r"' : ''}>${c}</td>`).join('')}</tr>`).join('');
  return `<table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

function section(id: string, title: string, lead: string, content: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>${lead ? `<p class="lead">${lead}</p>` : ''}${content}</section>`;
}

// ------------------------------------------------------------------------------------ sections

function httpSection(ctx: Ctx): string {
  const { r, k } = ctx;
  const routes = routeNames(r).filter((n) => !n.startsWith('sim_'));
  const allRoutes = routeNames(r);
  const plots: string[] = [];
  const reqs = findSeries(r, 'http_reqs');
  plots.push(
    chart(ctx, {
      id: 'throughput',
      title: 'Throughput per route',
      subtitle: 'requests per second in each bucket',
      unit: 'per_s',
      series: [...routes.map((n) => ({ label: n, points: seriesXY(ctx, findSeries(r, 'http_reqs', { name: n }), 'count/s') })), { label: 'all requests', points: seriesXY(ctx, reqs, 'count/s'), color: '#111827', dash: '4 3', width: 1.4 }],
      thresholds: thresholdsOn(ctx.thresholds, 'http_reqs').filter((t) => t.aggregation === 'rate'),
    }, 'no HTTP requests'),
  );
  plots.push(latencyChart(ctx, 'latency-all', 'Latency, all requests', {}));
  const failedAll = findSeries(r, 'http_req_failed');
  const failedLines = [...thresholdsOn(ctx.thresholds, 'http_req_failed'), ...allRoutes.flatMap((n) => thresholdsOn(ctx.thresholds, 'http_req_failed', { name: n }))];
  plots.push(
    chart(ctx, {
      id: 'errors',
      title: 'Errors over time',
      subtitle: 'share of requests that failed in each bucket (http_req_failed), per route and overall',
      unit: 'ratio',
      series: [...routes.map((n) => ({ label: n, points: seriesXY(ctx, findSeries(r, 'http_req_failed', { name: n }), 'ratio') })), { label: 'all requests', points: seriesXY(ctx, failedAll, 'ratio'), color: '#111827', dash: '4 3', width: 1.4 }],
      thresholds: failedLines,
      yMin: 0,
    }, 'no HTTP requests'),
  );
  if (r.iterations.dropped > 0) {
    const names = r.series.series.filter((s) => s.metric === 'dropped_iterations' && s.tags.scenario !== undefined).map((s) => s.tags.scenario!);
    plots.push(
      chart(ctx, {
        id: 'dropped-iterations',
        title: 'Dropped iterations',
        subtitle: 'iterations per second that found no free VU, per scenario (the load planned but not served)',
        unit: 'per_s',
        series: names.map((n) => ({ label: n, points: seriesXY(ctx, findSeries(r, 'dropped_iterations', { scenario: n }), 'sum/s') })),
        thresholds: thresholdsOn(ctx.thresholds, 'dropped_iterations').filter((t) => t.aggregation === 'rate'),
      }),
    );
  }
  for (const n of routes) plots.push(latencyChart(ctx, `latency-${plotId(n)}`, `Latency: ${n}`, { name: n }));
  const rows = k.routes.map((x) => [esc(x.name), num(x.count), x.failed ? `<b>${num(x.failed)}</b>` : '0', ms(x.p50), ms(x.p95), ms(x.p99), ms(x.max)]);
  const intended = k.http?.intendedP95 !== null && k.http?.intendedP95 !== undefined ? ` From the intended send time (queueing in the load generator included), p95 was ${ms(k.http.intendedP95)}.` : '';
  const lead = k.http ? `${num(k.http.requests)} requests (${num(k.http.perS)}/s), ${pct(k.http.failedRate)} failed; p95 ${ms(k.http.p95)}, p99 ${ms(k.http.p99)}.${intended} Latency plots use a log scale; routes named <code>sim_*</code> are the harness's admin calls (tables only).` : 'No HTTP requests in this run.';
  return section('http', 'HTTP', lead, `<div class="grid">${plots.join('')}</div>${rows.length ? `<h3>Per route</h3>${table(['route', ['requests', 'r'], ['failed', 'r'], ['p50', 'r'], ['p95', 'r'], ['p99', 'r'], ['max', 'r']], rows)}` : ''}`);
}

function latencyChart(ctx: Ctx, id: string, title: string, tags: Record<string, string>): string {
  const { r } = ctx;
  const dur = findSeries(r, 'http_req_duration', tags);
  const intended = findSeries(r, 'http_req_intended_duration', tags);
  const series: ChartSeries[] = [
    { label: 'p50', points: seriesXY(ctx, dur, { p: 50 }), color: PALETTE[2] },
    { label: 'p95', points: seriesXY(ctx, dur, { p: 95 }), color: PALETTE[0] },
    { label: 'p99', points: seriesXY(ctx, dur, { p: 99 }), color: PALETTE[1] },
    { label: 'max', points: seriesXY(ctx, dur, 'max'), color: '#9ca3af', width: 1.2 },
  ];
  const iP99 = seriesXY(ctx, intended, { p: 99 });
  const dP99 = series[2]!.points;
  // Shown only where queueing before the send made a difference.
  if (iP99.some((p, i) => Math.abs(p[1] - (dP99[i]?.[1] ?? p[1])) > 0.05 * Math.max(1, p[1]))) series.push({ label: 'p99 from intended send', points: iP99, color: PALETTE[3], dash: '5 3', width: 1.4 });
  const lines = [...thresholdsOn(ctx.thresholds, 'http_req_duration', tags), ...thresholdsOn(ctx.thresholds, 'http_req_intended_duration', tags)];
  return chart(ctx, { id, title, subtitle: 'per-bucket percentiles of http_req_duration (HDR histograms per bucket), max', unit: 'ms', series, thresholds: lines, log: true, thinBy: 'max' }, 'no requests');
}

function fanoutSection(ctx: Ctx): string {
  const { r, k, tl } = ctx;
  const tel = r.telemetry;
  const why = 'no post was fanned out to followers';
  const f = tel?.fanout;
  const lag = f?.lagOverTime ?? [];
  const lagPts = (pick: (w: (typeof lag)[number]) => number) => telemetryXY(lag.map((w) => [w.t, pick(w)] as [number, number]), r, tl, { widthMs: LAG_WINDOW_MS });
  const has = Boolean(k.fanout);
  const plots = [
    chart(ctx, { id: 'fanout-deliveries', title: 'Fan-out deliveries', subtitle: 'feed-list writes per second', unit: 'per_s', series: [{ label: 'deliveries/s', points: has ? telemetryXY(f?.deliveriesPerS, r, tl, { perSecond: true }) : [] }] }, has ? 'no feed list was written (the posts reached no followers)' : why),
    chart(ctx, {
      id: 'fanout-lag',
      title: 'Delivery lag',
      subtitle: 'post → last follower list written, per 10-s window',
      unit: 'ms',
      series: [
        { label: 'p50', points: lagPts((w) => w.p50Ms), color: PALETTE[2] },
        { label: 'p99', points: lagPts((w) => w.p99Ms), color: PALETTE[1] },
        { label: 'max', points: lagPts((w) => w.maxMs), color: '#9ca3af', width: 1.2 },
      ],
      thresholds: thresholdsOn(ctx.thresholds, 'fanout_lag_ms'),
      log: true,
    }, why),
    chart(ctx, { id: 'queue-depth', title: 'Job queue depth', subtitle: 'jobs waiting (largest in each second)', unit: 'count', series: [{ label: 'queue depth', points: has || (f?.queueDepthMax ?? 0) > 0 ? telemetryXY(f?.queueDepth, r, tl) : [] }], thresholds: thresholdsOn(ctx.thresholds, 'queue_depth'), thinBy: 'max' }, 'no job waited in the queue'),
  ];
  const lead = k.fanout
    ? `${num(k.fanout.posts)} posts fanned out to ${num(k.fanout.deliveries)} feed lists (${num(k.fanout.failures)} failures); followers per post p50 ${k.fanout.sizeP50 === null ? '–' : num(k.fanout.sizeP50)}, max ${k.fanout.sizeMax === null ? '–' : num(k.fanout.sizeMax)}; delivery lag p50 ${ms(k.fanout.lagP50)}, p99 ${ms(k.fanout.lagP99)}, max ${ms(k.fanout.lagMax)}.`
    : 'No fan-out in this run.';
  return section('fanout', 'Fan-out', lead, `<div class="grid">${plots.join('')}</div>`);
}

function shardHeat(ctx: Ctx, c: NonNullable<ResultDocument['telemetry']>['hotspots']['clusters'][number]): string {
  const { r, tl } = ctx;
  const step = r.telemetry?.stepMs ?? 1000;
  const bands = c.heat.bands;
  const merge = Math.max(1, Math.ceil(bands / MAX_HEAT_ROWS));
  const rowsN = Math.ceil(bands / merge);
  const width = c.heat.bandWidth * merge;
  const rows = Array.from({ length: rowsN }, (_, i) => `${i * width}–${Math.min(c.logicalShards, (i + 1) * width) - 1}`);
  const colMerge = Math.max(1, Math.ceil(c.heat.rows.length / MAX_HEAT_COLUMNS));
  const cells: HeatCell[] = [];
  for (let j = 0; j < c.heat.rows.length; j += colMerge) {
    const group = c.heat.rows.slice(j, j + colMerge);
    const x0 = telemetryX(group[0]!.t, tl);
    const x1 = telemetryX(group[group.length - 1]!.t + step, tl);
    const secs = (x1 - x0) || 1;
    for (let i = 0; i < rowsN; i++) {
      let v = 0;
      for (const g of group) for (let b = i * merge; b < Math.min(bands, (i + 1) * merge); b++) v += g.ops[b] ?? 0;
      cells.push({ x0, x1, row: i, v: v / secs });
    }
  }
  return heatmap({ id: `shard-heat-${plotId(c.cluster)}`, title: `Load per logical-shard band: ${c.cluster}`, subtitle: `queries per second on each band of ${width} logical shards (rows: shard numbers)`, unit: 'per_s', rows, cells, markers: ctx.markers, x: ctx.x }, 'no queries reached the shards');
}

function serverHeat(ctx: Ctx, c: NonNullable<ResultDocument['telemetry']>['hotspots']['clusters'][number]): string {
  const { r, tl } = ctx;
  const step = r.telemetry?.stepMs ?? 1000;
  const cells: HeatCell[] = [];
  c.servers.forEach((s, row) => {
    const pts = s.opsPerS;
    const colMerge = Math.max(1, Math.ceil(pts.length / MAX_HEAT_COLUMNS));
    for (let j = 0; j < pts.length; j += colMerge) {
      const group = pts.slice(j, j + colMerge);
      const x0 = telemetryX(group[0]![0], tl);
      const end = Math.min(group[group.length - 1]![0] + step, Math.max(r.telemetry!.nowMs, group[group.length - 1]![0] + 1));
      const x1 = telemetryX(end, tl);
      // opsPerS divided each step's count by the whole step; the step under way is partial.
      const count = group.reduce((a, p) => a + (p[1] * step) / 1000, 0);
      cells.push({ x0, x1, row, v: count / Math.max(1e-3, x1 - x0) });
    }
  });
  return heatmap({ id: `server-heat-${plotId(c.cluster)}`, title: `Load per physical server: ${c.cluster}`, subtitle: 'queries per second on each server (primary and its replicas)', unit: 'per_s', rows: c.servers.map((s) => `${s.name}${s.down ? ' (down)' : ''}`), cells, markers: ctx.markers, x: ctx.x }, 'no queries reached the servers');
}

function hotspotsSection(ctx: Ctx): string {
  const { r, k, tl } = ctx;
  const clusters = r.telemetry?.hotspots.clusters ?? [];
  if (clusters.length === 0) return section('hotspots', 'Hotspots', 'No hotspot telemetry in this run.', `<div class="grid">${heatmap({ id: 'shard-heat', title: 'Load per logical-shard band', unit: 'per_s', rows: [], cells: [], markers: [], x: ctx.x }, 'the run has no topology telemetry')}</div>`);
  const parts: string[] = [];
  for (const c of clusters) {
    const fig = k.clusters.find((x) => x.cluster === c.cluster)!;
    const skewLines = [...thresholdsOn(ctx.thresholds, 'shard_skew'), ...thresholdsOn(ctx.thresholds, 'server_skew')];
    const sampled = (name: string) => (clusters.length === 1 ? seriesXY(ctx, findSeries(r, name), 'max') : []);
    const skew = chart(ctx, {
      id: `skew-${plotId(c.cluster)}`,
      title: `Skew: ${c.cluster}`,
      subtitle: 'busiest ÷ mean, per second; dashed: since the start, as thresholds judge it',
      unit: 'count',
      series: [
        { label: 'logical shards', points: telemetryXY(c.skewOverTime, r, tl), color: PALETTE[7] },
        { label: 'physical servers', points: telemetryXY(c.serverSkewOverTime, r, tl), color: PALETTE[0] },
        { label: 'shard_skew (since start)', points: sampled('shard_skew'), color: PALETTE[7], dash: '4 3', width: 1.3 },
        { label: 'server_skew (since start)', points: sampled('server_skew'), color: PALETTE[0], dash: '4 3', width: 1.3 },
      ],
      thresholds: skewLines,
    });
    const hot = c.hottest.map((h) => [
      String(h.shard),
      esc(h.server),
      num(h.ops),
      timesText(fig, h.ops),
      pct(h.share),
      esc(h.users.slice(0, 3).map((u) => `@${u.username ?? u.id} (${pct(u.share)}, via ${u.via.join('/')})`).join(', ') || '–'),
      esc(h.kinds.slice(0, 4).map((x) => `${x.kind} ${num(x.count)}`).join(', ') || '–'),
    ]);
    parts.push(
      `<h3>${esc(c.cluster)} <span class="count">— ${num(c.logicalShards)} logical shards on ${c.servers.length} servers, skew ${c.skew === null ? '–' : num(c.skew)} (shards), ${c.serverSkew === null ? '–' : num(c.serverSkew)} (servers)</span></h3>`,
      `<div class="grid">${shardHeat(ctx, c)}${serverHeat(ctx, c)}${skew}<div><h3>Hottest shards, and the users behind them</h3>${hot.length ? table([['shard', 'r'], 'server', ['queries', 'r'], ['× mean', 'r'], ['share', 'r'], 'users whose rows were touched', 'operations'], hot) : '<p class="lead">No queries.</p>'}</div></div>`,
    );
  }
  return section('hotspots', 'Hotspots', 'Operations per logical shard (in bands) and per physical server over time; a hot band or server shows as a dark stripe.', parts.join(''));
}

function cachesSection(ctx: Ctx): string {
  const { r, k, tl } = ctx;
  const tel = r.telemetry;
  const why = 'no cache lookups';
  const c = k.caches;
  const nodes = tel?.caches.nodes ?? [];
  const ratio = chart(ctx, {
    id: 'cache-hit-ratio',
    title: 'Cache hit ratio per node',
    subtitle: 'hits ÷ lookups per second; dashed: cache_hit_rate over the last 10 s, as thresholds judge it',
    unit: 'ratio',
    series: c
      ? [
          ...nodes.map((n) => ({ label: n.name, points: telemetryXY(n.hitRatioOverTime, r, tl), width: 1.4 })),
          { label: 'all nodes', points: telemetryXY(tel?.caches.hitRatioOverTime, r, tl), color: '#111827', width: 2.4 },
          { label: 'cache_hit_rate (10 s)', points: seriesXY(ctx, findSeries(r, 'cache_hit_rate'), 'min'), color: '#111827', dash: '4 3', width: 1.3 },
        ]
      : [],
    thresholds: thresholdsOn(ctx.thresholds, 'cache_hit_rate'),
    yMin: 0,
    yMax: 1,
  }, why);
  const fills = chart(ctx, {
    id: 'cache-fills',
    title: 'Misses that reached a shard, evictions, herds',
    subtitle: 'per second',
    unit: 'per_s',
    series: c
      ? [
          { label: 'fills (misses to a shard)', points: telemetryXY(tel?.caches.fillsPerS, r, tl, { perSecond: true }), color: PALETTE[1] },
          { label: 'evictions', points: telemetryXY(tel?.caches.evictionsPerS, r, tl, { perSecond: true }), color: PALETTE[4] },
          { label: 'herd events', points: telemetryXY(tel?.caches.herdPerS, r, tl, { perSecond: true }), color: PALETTE[7] },
          ...(tel?.caches.herdFillsPerS ? [{ label: 'herd reads (of the fills)', points: telemetryXY(tel.caches.herdFillsPerS, r, tl, { perSecond: true }), color: PALETTE[5] }] : []),
        ]
      : [],
  }, why);
  const rows = nodes.map((n) => [esc(n.name), n.alive ? esc(cacheNodeState(n, r, tl)) : `<b>${esc(cacheNodeState(n, r, tl))}</b>`, pct(n.hitRatio), num(n.hits), num(n.misses), esc(cacheNodeDeadText(n)), num(n.evictions), num(n.fills), num(n.herdEvents), num(n.items)]);
  const toGutter = nodes.reduce((a, n) => a + (n.toGutter ?? 0), 0);
  const lead = c ? `Hit ratio ${pct(c.hitRatio)} over the run${c.lowest ? `, lowest ${pct(c.lowest.ratio)} at ${formatSeconds(c.lowest.x)}` : ''}; ${num(c.lookups)} lookups, ${num(c.fills)} misses reached a shard, ${num(c.dead)} went to a dead node${toGutter > 0 ? ` (${num(toGutter)} more, of a down node's keys, to the gutter pool)` : ''}, ${num(c.evictions)} evictions, ${num(c.herdEvents)} herd events.${tel?.caches.remote ? ` On memcached processes: ${num(tel.caches.remote.errors)} requests to a node failed, and a node that had stopped answering answered again ${num(tel.caches.remote.returns)} times (flushed first).` : ''}` : 'No cache lookups in this run.';
  return section('caches', 'Caches', lead, `<div class="grid">${ratio}${fills}</div>${rows.length ? table(['node', 'state', ['hit ratio', 'r'], ['hits', 'r'], ['misses', 'r'], ['dead', 'r'], ['evictions', 'r'], ['fills', 'r'], ['herd events', 'r'], ['items at end', 'r']], rows) : ''}`);
}

function replicasSection(ctx: Ctx): string {
  const { r, k, tl } = ctx;
  const rp = k.replicas;
  const nodes = rp?.nodes ?? [];
  const lagging = nodes.filter((n) => n.maxLagMs > 0);
  const shown = lagging.slice().sort((a, b) => b.maxLagMs - a.maxLagMs || naturalCompare(a.name, b.name));
  // No replica lagged: one flat line for all of them says so without a dozen overlapping ones.
  const flat = nodes.length && !lagging.length ? [{ label: `all ${nodes.length} replicas`, points: telemetryXY(nodes[0]!.lagOverTime, r, tl), color: '#6b7280' }] : [];
  const lag = chart(ctx, {
    id: 'replica-lag',
    title: 'Replica lag per node',
    subtitle: `largest lag in each second${lagging.length && lagging.length < nodes.length ? ` (${nodes.length - lagging.length} replicas never lagged and are left out)` : ''}`,
    unit: 'ms',
    series: [...shown.map((n) => ({ label: n.name, points: telemetryXY(n.lagOverTime, r, tl), width: 1.4 })), ...flat],
    thresholds: thresholdsOn(ctx.thresholds, 'replica_lag_ms'),
    thinBy: 'max',
  }, 'no database replicas');
  const stale = chart(ctx, {
    id: 'stale-reads',
    title: 'Stale reads',
    subtitle: 'replica reads (database and feed) that missed writes still in flight, per second',
    unit: 'per_s',
    series: rp ? [{ label: 'stale reads/s', points: telemetryXY(r.telemetry?.replicas.staleReadsPerS, r, tl, { perSecond: true }), color: PALETTE[7] }] : [],
  }, rp ? 'no stale read was served' : 'no replicas');
  const rows = nodes.map((n) => [esc(n.name), esc(n.server), ms(n.configuredLagMs), ms(n.maxLagMs), ms(n.lagMs), num(n.backlog), num(n.staleReads)]);
  const lead = rp ? `Lag peaked at ${ms(rp.maxLagMs)}${esc(worstText(rp))}; ${num(rp.staleReads.total)} stale reads (${num(rp.staleReads.db)} database, ${num(rp.staleReads.feed)} feed); ${num(rp.writesLost)} writes lost on promotion.` : 'No replicas in this run.';
  return section('replicas', 'Replicas', lead, `<div class="grid">${lag}${stale}</div>${rows.length ? table(['replica', 'of', ['configured lag at end', 'r'], ['max lag', 'r'], ['lag at end', 'r'], ['backlog at end', 'r'], ['stale reads', 'r']], rows) : ''}`);
}

/** The statistic of a bucket that matches a threshold's aggregation, and the plot's unit. */
function statFor(t: ThresholdLine, s: SeriesEntry): { stat: BucketStat; unit: Unit; what: string } | null {
  const unit: Unit = s.type === 'rate' ? 'ratio' : s.kind === 'time' ? 'ms' : 'count';
  if (s.type === 'trend') {
    if (t.percentile !== undefined) return { stat: { p: t.percentile }, unit, what: `p(${t.percentile}) per bucket` };
    if (t.aggregation === 'med') return { stat: { p: 50 }, unit, what: 'median per bucket' };
    if (t.aggregation === 'avg') return { stat: 'mean', unit, what: 'mean per bucket' };
    if (t.aggregation === 'min' || t.aggregation === 'max') return { stat: t.aggregation, unit, what: `${t.aggregation} per bucket` };
  }
  if (s.type === 'rate' && t.aggregation === 'rate') return { stat: 'ratio', unit: 'ratio', what: 'share of non-zero samples per bucket' };
  if (s.type === 'counter' && t.aggregation === 'count') return { stat: 'cumsum', unit: 'count', what: 'running total' };
  if (s.type === 'counter' && t.aggregation === 'rate') return { stat: 'sum/s', unit: 'per_s', what: 'per second in each bucket' };
  if (s.type === 'gauge' && t.aggregation === 'value') return { stat: 'last', unit: 'count', what: 'last value per bucket' };
  return null;
}

/** A plot for every threshold that no area plot drew: the metric it judges, over time. */
function otherThresholds(ctx: Ctx): string {
  const rest = ctx.thresholds.filter((t) => !ctx.drawn.has(t));
  if (rest.length === 0) return '';
  const plots = rest.map((t, i) => {
    const exact = findSeries(ctx.r, t.name, t.tags);
    const s = exact ?? findSeries(ctx.r, t.name);
    const how = s ? statFor(t, s) : null;
    const id = `threshold-${i + 1}-${plotId(t.metric)}`;
    // A sub-metric that matched no sample: the whole metric's series would draw other requests.
    if (!exact && Object.keys(t.tags).length > 0 && ctx.k.thresholds.find((x) => x.metric === t.metric && x.expression === t.expression)?.observed === null) return chart(ctx, { id, title: `${t.metric} ${t.expression}`, unit: 'count', series: [] }, 'no samples in this run');
    if (!s || !how) return chart(ctx, { id, title: `${t.metric} ${t.expression}`, unit: 'count', series: [] }, s ? 'its aggregation has no per-bucket equivalent' : 'the metric has no time series');
    const note = exact ? '' : ' — the series covers every sample of the metric, not only this sub-metric';
    return chart(ctx, { id, title: `${t.metric}: ${t.expression}`, subtitle: `${t.name}, ${how.what}${note}`, unit: how.unit, series: [{ label: t.name, points: seriesXY(ctx, s, how.stat) }], thresholds: [t] }, 'no samples');
  });
  return section('thresholds-plots', 'Other thresholds', 'Thresholds whose metric has no plot in the sections above, each over time with its limit.', `<div class="grid">${plots.join('')}</div>`);
}

function eventsSection(ctx: Ctx): string {
  const { r, tl } = ctx;
  const starts = r.options.scenarios.filter((s) => s.startTimeMs > 0).map((s) => ({ x: s.startTimeMs / 1000, what: `scenario <code>${esc(s.name)}</code> starts (${esc(s.executor)})` }));
  const events = (r.telemetry?.events ?? []).map((e) => ({ x: telemetryX(e.t, tl), what: esc(e.label) }));
  const rows = [...starts, ...events].sort((a, b) => a.x - b.x).map((e) => [formatSeconds(e.x), formatSeconds(e.x * r.speed), e.what]);
  return section('events', 'Events', 'Faults, shard moves and scenario starts, as marked on every time axis (scenario time = wall time × --speed).', rows.length ? table([['at', 'r'], ['scenario time', 'r'], 'event'], rows) : '<p class="lead">No faults, shard moves or delayed scenarios in this run.</p>');
}

/** A simulated run: the model, its starting state, the order resources saturated, and every resource's load (all of them, where report.md lists the busiest). */
function simulationSection(ctx: Ctx): string {
  const sim = ctx.r.simulation;
  if (!sim) return '';
  const t = simulationTexts(sim);
  const head = (h: string[]) => h.map((x, i): string | [string, 'r'] => (i === 0 ? x : [x, 'r']));
  const cells = (rows: string[][]) => rows.map((r) => r.map(esc));
  const p = (text: string) => `<p>${esc(text)}</p>`;
  const model = `<p>Simulated in virtual time by <code>${esc(sim.model)}</code> (no HTTP, no wall clock): every request queued at the resources the live code would use. ${num(sim.events)} events.</p>`;
  const saturation = t.saturation.length ? `<h3>${esc(t.saturationLead.replace(/:$/, ''))}</h3>${table(head(t.saturationHead), cells(t.saturation))}` : p(t.unsaturated);
  return section(
    'simulation',
    'Simulation',
    'Times are virtual (the day starts at 00:00); latencies are queueing plus service times at the modelled resources, not a measurement of this machine.',
    `${model}${p(t.population)}${p(t.warm)}${saturation}<h3>Every resource</h3>${table(head(t.resourceHead), cells(t.resources))}${t.delivery ? p(t.delivery) : ''}`,
  );
}

function configSection(ctx: Ctx): string {
  const { r } = ctx;
  const runsFor = (s: ResultDocument['options']['scenarios'][number]) => ('durationMs' in s ? formatSeconds(s.durationMs / 1000) : 'maxDurationMs' in s ? `≤ ${formatSeconds(s.maxDurationMs / 1000)}` : 'stages' in s ? formatSeconds(s.stages.reduce((a, st) => a + st.durationMs, 0) / 1000) : '–');
  const plural = (n: number, one: string) => `${num(n)} ${one}${n === 1 ? '' : 's'}`;
  const load = (s: ResultDocument['options']['scenarios'][number]) =>
    'rate' in s
      ? `${num((s.rate * 1000) / s.timeUnitMs)} iterations/s`
      : 'startRate' in s
        ? `from ${num((s.startRate * 1000) / s.timeUnitMs)} iterations/s, ${plural(s.stages.length, 'stage')}`
        : 'vus' in s
          ? `${plural(s.vus, 'VU')}${'iterations' in s ? `, ${plural(s.iterations, 'iteration')}` : ''}`
          : 'startVUs' in s
            ? `from ${plural(s.startVUs, 'VU')}, ${plural(s.stages.length, 'stage')}`
            : '–';
  const scen = table(['scenario', 'executor', 'exec', ['starts', 'r'], ['runs for', 'r'], 'load (after --speed and --scale)'], r.options.scenarios.map((s) => [esc(s.name), esc(s.executor), `<code>${esc(s.exec)}</code>`, formatSeconds(s.startTimeMs / 1000), runsFor(s), esc(load(s))]));
  const kv = facts([
    ['script', `<code>${esc(r.script)}</code>`],
    ['seed', `<b>${esc(String(r.seed))}</b>`],
    ['speed / scale', `${num(r.speed)} / ${num(r.scale)}`],
    ['target', esc(r.target)],
    ['started', esc(r.startedAt)],
    ['topology', r.topology ? `${esc(r.topology.name)} — ${esc(r.topology.description)}` : 'not reported by the target'],
    ['time axis', ctx.tl.zeroFrom === 'telemetry' ? '0 = the scenarios start (from the telemetry snapshot and the run duration; setup is shaded before it)' : '0 = the scenarios start (from the metrics snapshot and the run duration)'],
  ]);
  const topo = r.topology ? `<h3>Topology config</h3><pre>${esc(JSON.stringify(r.topology.config, null, 2))}</pre>` : '';
  const thresholds = `<h3>Thresholds as written</h3><pre>${esc(JSON.stringify(r.options.thresholds, null, 2))}</pre>`;
  return section('config', 'Config and seed', '', `${kv}<h3>Scenarios</h3>${scen}<div class="grid">${topo ? `<div>${topo}</div>` : ''}<div>${thresholds}</div></div>`);
}

function header(ctx: Ctx): string {
  const { r, k } = ctx;
  const threw = k.iterations.errors > 0 ? `<span class="verdict warn" title="${esc(iterationErrorsText(k, 5, 300))}">${num(k.iterations.errors)} ITERATION${k.iterations.errors === 1 ? '' : 'S'} THREW</span>` : '';
  const invalid = k.validity.valid ? '' : `<span class="verdict warn" title="${esc(k.validity.reasons.join('; '))}">NOT VALID FOR CONCLUSIONS</span>`;
  const verdict = (k.passed ? '<span class="verdict ok">PASSED</span>' : `<span class="verdict bad">${r.aborted ? 'ABORTED' : 'FAILED'}</span>`) + threw + invalid;
  const meta = [
    ['thresholds', esc(verdictText(k))],
    ['seed', esc(String(r.seed))],
    ...(r.simulation ? [] : [['speed', num(r.speed)]]),
    ['scale', num(r.scale)],
    ['duration', esc(durationText(k, r.speed))],
    ['topology', esc(r.topology?.name ?? 'unknown')],
    ['started', esc(r.startedAt)],
  ];
  return `<header class="top"><div class="inner">${verdict}<h1>${esc(r.scenario)}<small>Scalegram run report</small></h1><div class="meta">${meta.map(([a, b]) => `<span>${a} <b>${b}</b></span>`).join('')}</div></div></header>`;
}

function overview(ctx: Ctx): string {
  const { k } = ctx;
  const f = findings(ctx.r, k);
  // Failed thresholds, an abort and iterations that threw rank first: each is marked.
  const bad = (k.failed.length > 0 ? 1 : 0) + (k.aborted ? 1 : 0) + (k.iterations.errors > 0 ? 1 : 0);
  const list = `<ol class="findings">${f.map((t, i) => `<li${i < bad ? ' class="bad"' : ''}>${esc(t)}</li>`).join('')}</ol>`;
  const tiles: Array<[string, string]> = [];
  if (k.http) tiles.push(['requests/s', num(k.http.perS)], ['failed', pct(k.http.failedRate)], ['p95 latency', ms(k.http.p95)], ['p99 latency', ms(k.http.p99)]);
  tiles.push(['dropped iterations', `${num(k.iterations.dropped)} (${pct(k.iterations.droppedShare)})`]);
  tiles.push([k.iterations.errors === 1 ? 'iteration threw' : 'iterations threw', k.iterations.errors > 0 ? `<span class="bad">${num(k.iterations.errors)}</span>` : '0']);
  if (k.caches) tiles.push(['cache hit ratio', pct(k.caches.hitRatio)]);
  for (const c of k.clusters) tiles.push([`shard skew${k.clusters.length > 1 ? ` (${c.cluster})` : ''}`, c.skew === null ? '–' : num(c.skew)]);
  if (k.fanout) tiles.push(['fan-out lag p99', ms(k.fanout.lagP99)]);
  if (k.replicas) tiles.push(['replica lag max', ms(k.replicas.maxLagMs)], ['stale reads', num(k.replicas.staleReads.total)]);
  const tileHtml = `<div class="tiles">${tiles.map(([a, b]) => `<div class="tile"><div class="v">${b}</div><div class="k">${esc(a)}</div></div>`).join('')}</div>`;
  const toc = `<nav class="toc">${[['thresholds', 'Thresholds'], ['http', 'HTTP'], ['fanout', 'Fan-out'], ['hotspots', 'Hotspots'], ['caches', 'Caches'], ['replicas', 'Replicas'], ...(ctx.r.simulation ? [['simulation', 'Simulation']] : []), ['events', 'Events'], ['config', 'Config and seed']].map(([id, t]) => `<a href="#${id}">${t}</a>`).join('')}</nav>`;
  return `${list}<div class="summary">${thresholdsTable(ctx)}<section id="figures"><h2>Key figures</h2>${tileHtml}</section></div>${toc}`;
}

function thresholdsTable(ctx: Ctx): string {
  const { k } = ctx;
  if (k.thresholds.length === 0) return section('thresholds', 'Thresholds', 'The scenario sets no thresholds.', '');
  const rows = ctx.r.thresholds.map((t, i) => {
    const row = k.thresholds[i]!;
    const line = ctx.thresholds.find((l) => l.metric === t.metric && l.expression === t.expression);
    const on = line ? ctx.drawnOn.get(line) : undefined;
    return [`<span class="${row.ok ? 'ok' : 'bad'}">${row.ok ? '✓' : '✗'}</span>`, `<code>${esc(row.metric)}</code>`, `<code>${esc(row.expression)}</code>${row.abortOnFail ? ' (abortOnFail)' : ''}`, esc(observedText(row)), on ? `<a href="#plot-${esc(on)}">${esc(on)}</a>` : '–'];
  });
  const html = table(['', 'metric', 'threshold', ['observed', 'r'], 'drawn on'], rows).replace(/<td><span class="ok">/g, '<td class="ok"><span>').replace(/<td><span class="bad">/g, '<td class="bad"><span>');
  return section('thresholds', 'Thresholds', `${esc(verdictText(k))}; each is drawn as a dashed line on the plot of what it judges.`, html);
}

export function reportHtml(r: ResultDocument): string {
  const tl = timeline(r);
  const buckets = seriesBuckets(r, tl);
  const lo = Math.min(tl.startS, 0);
  const ctx: Ctx = { r, k: keyFigures(r), tl, x: [lo, Math.max(tl.endS, lo + 1)], buckets, markers: runMarkers(r, tl), thresholds: thresholdLines(r), drawn: new Set(), drawnOn: new Map() };
  // Areas first, so the thresholds table can link each threshold to the plot that drew it.
  const areas = [httpSection(ctx), fanoutSection(ctx), hotspotsSection(ctx), cachesSection(ctx), replicasSection(ctx), otherThresholds(ctx)];
  const body = [overview(ctx), ...areas, simulationSection(ctx), eventsSection(ctx), configSection(ctx), `<footer>Generated by <code>scalegram report</code> from result.json (${esc(r.format)}). ${r.simulation ? 'Times are seconds of virtual time since the scenarios started (simulated: no wall clock).' : `Times are seconds of wall time since the scenarios started; at --speed ${num(r.speed)} one second stands for ${formatSeconds(r.speed)} of scenario time.`}</footer>`];
  return page(`${r.scenario} — Scalegram report`, header(ctx), body.join('\n'));
}
