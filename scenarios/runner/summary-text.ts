// The end-of-run summary printed to the terminal: thresholds first, then HTTP per route, then the
// three areas the brief asks every run to show — fan-out, hotspots, caches — and replicas. Every
// figure comes from key-figures.ts on the result document as result.json holds it, formatted by
// format.ts: the same functions report.md and report.html use, so the two never disagree.

import { formatSeconds, formatValue, num } from './format.ts';
import { durationText, keyFigures, observedText, timesText, type KeyFigures } from './key-figures.ts';
import { resultDocument, type ResultDocument } from './results.ts';
import type { RunResult } from './run.ts';

const ms = (v: number | null | undefined) => (v === null || v === undefined ? '–' : formatValue(v, 'ms'));
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : formatValue(v, 'ratio'));

/** Width of the route column, and of each figure column, in the per-route table (characters). */
const ROUTE_COLUMN = 20;
const FIGURE_COLUMN = 10;

/**
 * A route as the table shows it: an untagged request's name is its URL, so the origin goes (it is
 * the run's own server) and a long path keeps its end, where the route differs.
 */
function routeLabel(name: string): string {
  const path = name.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]+(?=\/|$)/i, '') || '/';
  return path.length < ROUTE_COLUMN ? path : `…${path.slice(path.length - (ROUTE_COLUMN - 2))}`;
}

/**
 * The summary of a finished run. It reads the document that result.json will hold (through JSON, which
 * drops undefined fields and turns NaN into null) rather than the live registry, so it sees exactly
 * what `scalegram report` sees.
 */
export function summaryText(r: RunResult): string {
  return resultSummaryText(JSON.parse(JSON.stringify(resultDocument(r))) as ResultDocument);
}

/** The summary of a result document (result.json): what `scalegram run` prints at the end. */
export function resultSummaryText(r: ResultDocument): string {
  const k = keyFigures(r);
  const out: string[] = [];
  out.push('', `  scenario ${r.scenario}  seed ${r.seed}${r.simulation ? '' : `  speed ${num(r.speed)}`}  scale ${num(r.scale)}  ${durationText(k, r.speed)}${r.aborted ? `  ABORTED: ${r.aborted}` : ''}`);

  out.push('', '  THRESHOLDS');
  if (k.thresholds.length === 0) out.push('    (none)');
  for (const t of k.thresholds) out.push(`    ${t.ok ? '✓' : '✗'} ${t.metric}  ${t.expression}  (${observedText(t)})`);
  if (!k.validity.valid) out.push(`    ⚠ NOT VALID for conclusions, whatever the thresholds say: ${k.validity.reasons.join('; ')}`);

  out.push('', '  HTTP');
  out.push(...httpLines(k));

  out.push('', '  FAN-OUT');
  const f = k.fanout;
  if (!f) out.push('    no fan-out in this run (no post was pushed to followers)');
  else {
    out.push(
      `    posts ${num(f.posts)}  deliveries ${num(f.deliveries)}  failures ${num(f.failures)}  followers per post p50 ${f.sizeP50 === null ? '–' : num(f.sizeP50)} max ${f.sizeMax === null ? '–' : num(f.sizeMax)}  delivery lag p50 ${ms(f.lagP50)}  p99 ${ms(f.lagP99)}  max ${ms(f.lagMax)}  queue depth max ${num(f.queueDepthMax)}`,
    );
  }

  out.push('', '  HOTSPOTS');
  if (k.clusters.length === 0) out.push('    no hotspot telemetry in this run');
  for (const c of k.clusters) {
    out.push(`    ${c.cluster}: logical shard skew ${c.skew === null ? '–' : num(c.skew)}, physical server skew ${c.serverSkew === null ? '–' : num(c.serverSkew)} (max/mean)`);
    for (const h of c.hottest.slice(0, 3)) {
      const who = h.users[0] ? `; @${h.users[0].username ?? h.users[0].id} (${pct(h.users[0].share)})` : '';
      out.push(`    hottest: shard ${h.shard} on ${h.server}: ${num(h.ops)} queries, ${timesText(c, h.ops)} the mean shard, ${pct(h.share)} of ${c.cluster}${who}`);
    }
  }

  out.push('', '  CACHES');
  const c = k.caches;
  if (!c) out.push('    no cache lookups in this run');
  else {
    const lowest = c.lowest ? `, lowest ${pct(c.lowest.ratio)} at ${formatSeconds(c.lowest.x)}` : '';
    out.push(`    hit ratio ${pct(c.hitRatio)} over the run${lowest}  misses that reached a shard ${num(c.fills)}  evictions ${num(c.evictions)}  herd events ${num(c.herdEvents)}${c.herdEvents > 0 ? ` (${num(c.herdFills)} read the shard)` : ''}`);
  }

  out.push('', '  REPLICAS');
  const rp = k.replicas;
  if (!rp) out.push('    no replicas in this run');
  else out.push(`    lag max ${ms(rp.maxLagMs)}  stale reads ${num(rp.staleReads.total)}  writes lost on promotion ${num(rp.writesLost)}`);
  out.push('');
  return out.join('\n') + '\n';
}

function httpLines(k: KeyFigures): string[] {
  const out: string[] = [];
  const h = k.http;
  if (h) {
    out.push(`    requests ${num(h.requests)} (${num(h.perS)}/s)  failed ${pct(h.failedRate)}  duration avg ${ms(h.avg)}  p95 ${ms(h.p95)}  p99 ${ms(h.p99)}  max ${ms(h.max)}`);
    if (h.intendedP95 !== null) out.push(`    from the intended send time: p95 ${ms(h.intendedP95)}  max ${ms(h.intendedMax)}`);
  }
  const it = k.iterations;
  out.push(`    iterations ${num(it.completed)} completed, ${num(it.interrupted)} interrupted, ${num(it.dropped)} dropped (${pct(it.droppedShare)} of planned)${it.errors ? `, ${num(it.errors)} threw` : ''}`);
  for (const e of it.errors ? it.errorMessages : []) out.push(`      ✗ ${num(e.count)}× in ${e.scenario}: ${e.message}`);
  if (k.harness?.saturated) out.push(`    ⚠ harness saturated: ${k.harness.side === 'shared' ? 'the event loop shared by server and load generator' : k.harness.side === 'server' ? "the server thread's event loop" : "the load generator's event loop"} ran up to ${num(k.harness.p99Ms)} ms late (p99; max ${num(k.harness.maxMs)} ms); latencies include queueing in this machine`);
  if (k.routes.length) {
    const cols = ['p50', 'p95', 'p99', 'max'];
    out.push(`    ${'route'.padEnd(ROUTE_COLUMN)}${'count'.padStart(9)}${'failed'.padStart(8)}${cols.map((x) => x.padStart(FIGURE_COLUMN)).join('')}`);
    for (const x of k.routes) {
      const figures = [x.p50, x.p95, x.p99, x.max].map((v) => ms(v).padStart(FIGURE_COLUMN)).join('');
      out.push(`    ${routeLabel(x.name).padEnd(ROUTE_COLUMN)}${num(x.count).padStart(9)}${num(x.failed).padStart(8)}${figures}`);
    }
  }
  return out;
}
