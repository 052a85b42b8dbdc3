// The end-of-run summary printed to the terminal: thresholds first, then HTTP per route, then the
// three areas the brief asks every run to show — fan-out, hotspots, caches — and replicas. A pure
// function of the run result.

import { decodeHistogram } from '../../sim/metrics.ts';
import { TREND_UNITS_PER_VALUE, type SeriesEntry } from './k6-metrics.ts';
import type { RunResult } from './run.ts';

interface RouteStats {
  name: string;
  count: number;
  failed: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Per-route figures from the `name`-tagged series (bucket histograms merged: ±0.5%). */
export function routeStats(series: SeriesEntry[], metric = 'http_req_duration'): RouteStats[] {
  const byName = new Map<string, RouteStats>();
  const failed = new Map<string, number>();
  for (const s of series) {
    const name = s.tags.name;
    if (name === undefined) continue;
    if (s.metric === 'http_req_failed') failed.set(name, s.sum.reduce((a, b) => a + b, 0));
    if (s.metric !== metric || !s.hdr) continue;
    const merged = decodeHistogram(s.hdr.find((h) => h) ?? '');
    let first = true;
    for (const h of s.hdr) {
      if (!h) continue;
      if (first) {
        first = false;
        continue;
      }
      merged.add(decodeHistogram(h));
    }
    const at = (p: number) => merged.getValueAtPercentile(p) / TREND_UNITS_PER_VALUE;
    byName.set(name, { name, count: s.count.reduce((a, b) => a + b, 0), failed: 0, p50: at(50), p95: at(95), p99: at(99), max: Math.max(...s.max.filter((x): x is number => x !== null), 0) });
  }
  for (const [name, n] of failed) {
    const r = byName.get(name);
    if (r) r.failed = n;
  }
  return [...byName.values()].sort((a, b) => b.count - a.count);
}

const fmt = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? '-' : n >= 100 ? n.toFixed(0) : n.toFixed(digits));

function get(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

export function summaryText(r: RunResult): string {
  const out: string[] = [];
  const seconds = r.durationMs / 1000;
  out.push('', `  scenario ${r.scenario}  seed ${r.seed}  speed ${r.speed}  scale ${r.scale}  ${seconds.toFixed(1)} s${r.aborted ? `  ABORTED: ${r.aborted}` : ''}`);

  out.push('', '  THRESHOLDS');
  if (r.thresholds.length === 0) out.push('    (none)');
  for (const t of r.thresholds) out.push(`    ${t.ok ? '✓' : '✗'} ${t.metric}  ${t.expression}  (${fmt(t.value, 3)})`);

  const reg = r.registry;
  const reqs = reg.values('http_reqs');
  const dur = reg.values('http_req_duration');
  const failed = reg.values('http_req_failed');
  out.push('', '  HTTP');
  out.push(`    requests ${reqs.count ?? 0} (${fmt((reqs.count ?? 0) / Math.max(seconds, 1e-9))}/s)  failed ${fmt(100 * (failed.rate ?? 0), 2)}%  duration avg ${fmt(dur.avg)} ms  p(95) ${fmt(dur['p(95)'])} ms  max ${fmt(dur.max)} ms`);
  const intended = reg.values('http_req_intended_duration');
  if ((intended.max ?? 0) > 0) out.push(`    from the intended send time: p(95) ${fmt(intended['p(95)'])} ms  max ${fmt(intended.max)} ms`);
  out.push(`    iterations ${r.iterations.completed} completed, ${r.iterations.interrupted} interrupted, ${r.iterations.dropped} dropped${r.iterations.errors ? `, ${r.iterations.errors} threw` : ''}`);
  for (const e of r.iterations.errors ? r.iterations.errorMessages : []) out.push(`      ✗ ${e.count}× in ${e.scenario}: ${e.message}`);
  const loop = r.harness.eventLoopDelayMs;
  if (loop.p99 >= 100) out.push(`    ⚠ harness saturated: event loop ran up to ${loop.p99.toFixed(0)} ms late (p99; max ${loop.max.toFixed(0)} ms); latencies include queueing in this process`);
  const routes = routeStats(reg.series().series);
  if (routes.length) {
    out.push(`    ${'route'.padEnd(16)}${'count'.padStart(9)}${'failed'.padStart(8)}${'p50'.padStart(9)}${'p95'.padStart(9)}${'p99'.padStart(9)}${'max'.padStart(9)}  (ms)`);
    for (const s of routes) out.push(`    ${s.name.slice(0, 15).padEnd(16)}${String(s.count).padStart(9)}${String(s.failed).padStart(8)}${fmt(s.p50).padStart(9)}${fmt(s.p95).padStart(9)}${fmt(s.p99).padStart(9)}${fmt(s.max).padStart(9)}`);
  }

  const tel = r.telemetry;
  const gauge = (name: string) => reg.values(name);
  out.push('', '  FAN-OUT');
  out.push(`    posts ${fmt(get(tel, 'fanout.completed') as number, 0)}  deliveries ${fmt(get(tel, 'fanout.deliveries') as number, 0)}  size per post p50 ${fmt(get(tel, 'fanout.sizePerPost.p50') as number, 0)} max ${fmt(get(tel, 'fanout.sizePerPost.max') as number, 0)}  delivery lag p50 ${fmt(get(tel, 'fanout.lagMs.p50') as number)} ms  p99 ${fmt(get(tel, 'fanout.lagMs.p99') as number)} ms  max queue depth ${fmt(gauge('queue_depth').max, 0)}`);
  out.push('', '  HOTSPOTS');
  out.push(`    shard skew (max/mean) median ${fmt(gauge('shard_skew').med, 2)}  worst ${fmt(gauge('shard_skew').max, 2)}`);
  out.push(`    physical servers: skew ${fmt(get(tel, 'hotspots.serverSkew') as number, 2)}`);
  const clusters = get(tel, 'hotspots.clusters');
  for (const c of (Array.isArray(clusters) ? clusters : []) as Array<Record<string, unknown>>) {
    const hottest = Array.isArray(c.hottest) ? (c.hottest as Array<Record<string, unknown>>) : [];
    for (const h of hottest.slice(0, 3)) {
      const users = Array.isArray(h.users) ? (h.users as Array<Record<string, unknown>>) : [];
      const who = users[0] ? `, ${fmt(100 * Number(users[0].share), 0)}% for @${String(users[0].username)}` : '';
      out.push(`    hottest: shard ${String(h.shard)} on ${String(h.server)}: ${String(h.ops)} ops (${fmt(100 * Number(h.share), 1)}% of ${String(c.cluster)})${who}`);
    }
  }
  out.push('', '  CACHES');
  out.push(`    hit ratio median ${fmt(100 * (gauge('cache_hit_rate').med ?? NaN))}%  lowest ${fmt(100 * (gauge('cache_hit_rate').min ?? NaN))}%  misses that reached a shard ${fmt(get(tel, 'caches.fills') as number, 0)}  evictions ${fmt(get(tel, 'caches.evictions') as number, 0)}  herd events ${fmt(get(tel, 'caches.herdEvents') as number, 0)}`);
  out.push('', '  REPLICAS');
  out.push(`    lag max ${fmt(Math.max(gauge('replica_lag_ms').max ?? 0, ...((get(tel, 'replicas.nodes') as Array<{ maxLagMs: number }> | undefined) ?? []).map((n) => n.maxLagMs)))} ms  stale reads ${fmt(gauge('stale_reads').max, 0)}  writes lost on promotion ${fmt(get(tel, 'replicas.writesLost') as number, 0)}`);
  out.push('');
  return out.join('\n') + '\n';
}
