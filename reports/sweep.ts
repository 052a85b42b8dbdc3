// The capacity-planning report of `scalegram sweep`: one scenario run on a grid of topologies, side
// by side — which topology meets every threshold, at what peak utilisation. A pure function of the
// sweep's plan and each point's result documents (result.json, summary.json); the CLI writes what
// it returns (sweep.json, sweep.md, sweep.html).

import { HARNESS_LOOP_P99_MS, harnessFigures, routeStats, runValidity } from '../scenarios/runner/key-figures.ts';
import { virtualTimeOfDay } from './findings.ts';
import type { SeriesEntry } from '../scenarios/runner/k6-metrics.ts';
import type { Utilisation } from '../sim/observability/telemetry.ts';

export const SWEEP_FORMAT = 'scalegram-sweep/1';

/** A value a varied topology field takes (typed by the topology schema). */
export type VaryValue = number | boolean | string;

/** One `--vary path=v1,v2,…`: the field and its values, in the order given. */
export interface SweepDimension {
  path: string;
  values: VaryValue[];
}

/**
 * passed: the run exited 0 (every threshold held); failed: exit 99 (thresholds failed — a result);
 * crashed: any other exit, or no readable result; interrupted: stopped by Ctrl-C; not-run: the
 * sweep stopped before it.
 */
export type PointStatus = 'passed' | 'failed' | 'crashed' | 'interrupted' | 'not-run';

/** The parts of result.json (format scalegram-result/1) the sweep reads. */
export interface PointResult {
  durationMs: number;
  /** errors/errorMessages: iterations that threw (absent in older results). */
  iterations: { completed: number; interrupted: number; dropped: number; errors?: number; errorMessages?: Array<{ message: string; scenario: string; count: number }> };
  thresholds: Array<{ metric: string; expression: string; ok: boolean; value?: number | null }>;
  series: { series: SeriesEntry[] };
  telemetry: {
    fanout?: { lagMs?: { p99: number } | null };
    hotspots?: { shardSkew: number | null; serverSkew: number | null };
    replicas?: { maxLagMs?: number; staleReads?: { total: number }; nodes?: Array<{ maxLagMs: number }> };
    /** Absent in results written before the utilisation section existed. */
    utilisation?: Utilisation;
  } | null;
  /** A simulated point's resources in the order they saturated (absent in live runs). */
  simulation?: { saturation: Array<{ resource: string; atMs: number; use: number; refused: number }> };
  /** A live point's event-loops' delay (absent in simulations and older results). */
  harness?: { eventLoopDelayMs: { p99: number; max: number }; serverEventLoopDelayMs?: { p99: number; max: number } };
}

/** The parts of summary.json (k6's summary-export shape) the sweep reads. */
export interface PointSummary {
  metrics: Record<string, Record<string, unknown>>;
  /** Scalegram's own metrics the script did not declare (summary-export.ts). */
  scalegram?: { metrics: Record<string, Record<string, unknown>> };
}

export interface SweepPointInput {
  /** Directory name of the point inside the sweep directory, e.g. `02_cache.nodes=3_shards.physical=8`. */
  name: string;
  values: Record<string, VaryValue>;
  /** The point's topology file, relative to the sweep directory. */
  topologyFile: string;
  status: PointStatus;
  /** The run's exit code (null: not run, or killed by a signal). */
  exitCode: number | null;
  /** Wall time of the run (ms). */
  wallMs: number | null;
  /** Why a crashed point failed: the last lines of its stderr. */
  error: string | null;
  result: PointResult | null;
  summary: PointSummary | null;
}

export interface SweepInput {
  scenario: string;
  /** The scenario file as the user gave it. */
  script: string;
  /** The sweep directory as the user gave it (or the default), for commands in the report. */
  outDir: string;
  /** The topology every point starts from: its name, and where it came from. */
  base: { name: string; source: string };
  seed: number;
  speed: number;
  scale: number;
  env: Record<string, string>;
  /** 'simulate': each point was `scalegram simulate` (virtual time); absent: `scalegram run`. */
  mode?: 'simulate';
  startedAt: string;
  dimensions: SweepDimension[];
  points: SweepPointInput[];
}

export interface RouteFigure {
  name: string;
  count: number;
  failed: number;
  p95Ms: number;
  p99Ms: number;
}

/** The figures compared across points (null: not measured in that run). */
export interface PointFigures {
  /** http_req_duration p(95) over every request (ms). */
  httpP95Ms: number | null;
  httpReqPerS: number | null;
  /** http_req_failed rate (0–1). */
  errorRate: number | null;
  routes: RouteFigure[];
  /** The sampled 10-second cache hit ratio: its lowest and median over the run (0–1). */
  cacheHitRatio: { min: number; med: number } | null;
  shardSkew: number | null;
  serverSkew: number | null;
  fanoutLagP99Ms: number | null;
  replicaLagMaxMs: number | null;
  staleReads: number | null;
  iterations: number;
  droppedIterations: number;
  /** dropped ÷ (completed + interrupted + dropped): above 0.1 the point served less load than planned. */
  droppedShare: number;
}

/** Peak utilisation of the point's busiest server and cache node, and the job queue. */
export interface PointUtilisation {
  server: { name: string; poolPeakInUse: number; poolSize: number; poolUse: number; poolPeakWaiting: number; peakOpsPerS: number } | null;
  cache: { name: string; peakBytes: number; capacityBytes: number; use: number; evictions: number } | null;
  queue: { peakDepth: number; maxDepth: number; depthUse: number; peakRunning: number; workers: number; workerUse: number } | null;
}

export interface SweepRow {
  name: string;
  values: Record<string, VaryValue>;
  /** `cache.nodes=3 shards.physical=8` */
  label: string;
  status: PointStatus;
  exitCode: number | null;
  wallMs: number | null;
  error: string | null;
  topologyFile: string;
  /** The point's result directory, relative to the sweep directory. */
  resultDir: string;
  thresholds: Array<{ metric: string; expression: string; ok: boolean; value: number | null }>;
  /** `metric expression` of each threshold that failed. */
  failedThresholds: string[];
  figures: PointFigures | null;
  utilisation: PointUtilisation | null;
  /** The command that reruns this point alone. */
  rerun: string;
  /**
   * Iterations that threw, with the first message: the scenario did not run as written on this
   * topology (e.g. its fault named a node the topology lacks), so the point cannot be the cheapest.
   */
  iterationErrors: { count: number; first: string | null };
  /**
   * A simulated point where a modelled resource saturated (≥ 95% busy in a step, or refusing work):
   * the first one and when (ms of virtual time). Its thresholds may hold while a queue grows without
   * bound, so it cannot be the cheapest. Null when none did, and for live runs.
   */
  saturated: { resource: string; atMs: number } | null;
  /**
   * Why the point's run cannot support conclusions (runValidity: most of its load dropped, or a route
   * failing for most of its requests); empty when it can. Such a point is never the cheapest.
   * (Absent in sweep.json files written before it existed.)
   */
  invalid: string[];
  /**
   * A live point whose harness saturated: the event loop the server and the load generator share
   * ran at least HARNESS_LOOP_P99_MS late at p99, so its latencies describe this machine's queueing,
   * not the topology's, and it cannot be the cheapest. Null otherwise (and in older sweep.json files).
   */
  harnessSaturated: { p99Ms: number; maxMs: number } | null;
  cheapest: boolean;
}

/** sweep.json: the sweep's settings as given (without the output directory), then its verdicts. */
export interface SweepDocument extends Omit<SweepInput, 'outDir' | 'points'> {
  format: typeof SWEEP_FORMAT;
  /** How "cheapest" is decided. */
  order: string;
  /** The cheapest point that met every threshold, or null. */
  cheapest: string | null;
  counts: Record<PointStatus, number>;
  rows: SweepRow[];
}

export const ORDER_RULE =
  'cheapest = first in the order of the varied values: the first --vary decides, then the next; numbers ascending, false before true, other values in the order given';

// ------------------------------------------------------------------------------------ figures

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function labelOf(values: Record<string, VaryValue>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

/**
 * k6 names an untagged request by its URL; each point serves on its own free port, so the origin
 * (`http://127.0.0.1:41234`) is dropped to line the same route up across points.
 */
export function routeName(name: string): string {
  return name.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]+(?=\/|$)/i, '') || '/';
}

/** The figures a sweep compares, from one run's result and summary documents. */
export function pointFigures(result: PointResult, summary: PointSummary | null): PointFigures {
  const metric = (name: string, key: string) => num((summary?.metrics[name] ?? summary?.scalegram?.metrics[name])?.[key]);
  const tel = result.telemetry;
  const series = result.series.series.map((e) => (e.tags.name === undefined ? e : { ...e, tags: { ...e.tags, name: routeName(e.tags.name) } }));
  const routes = routeStats(series).map((r) => ({ name: r.name, count: r.count, failed: r.failed, p95Ms: r.p95, p99Ms: r.p99 }));
  const hitMin = metric('cache_hit_rate', 'min');
  const hitMed = metric('cache_hit_rate', 'med');
  const lagNodes = tel?.replicas?.nodes?.map((n) => n.maxLagMs) ?? [];
  const lagTrend = metric('replica_lag_ms', 'max');
  const lagCandidates = [...lagNodes, ...(lagTrend === null ? [] : [lagTrend])];
  const it = result.iterations;
  const planned = it.completed + it.interrupted + it.dropped;
  return {
    httpP95Ms: metric('http_req_duration', 'p(95)'),
    // Over the load itself (result.durationMs), not k6's test run duration, which includes setup's seeding.
    httpReqPerS: ((c) => (c === null || !(result.durationMs > 0) ? metric('http_reqs', 'rate') : c / (result.durationMs / 1000)))(metric('http_reqs', 'count')),
    errorRate: metric('http_req_failed', 'value'),
    routes,
    cacheHitRatio: hitMin !== null && hitMed !== null ? { min: hitMin, med: hitMed } : null,
    shardSkew: num(tel?.hotspots?.shardSkew),
    serverSkew: num(tel?.hotspots?.serverSkew),
    fanoutLagP99Ms: num(tel?.fanout?.lagMs?.p99),
    replicaLagMaxMs: lagCandidates.length ? Math.max(...lagCandidates) : null,
    staleReads: num(tel?.replicas?.staleReads?.total),
    iterations: it.completed,
    droppedIterations: it.dropped,
    droppedShare: planned > 0 ? it.dropped / planned : 0,
  };
}

/** The busiest server and cache node of a run, from its telemetry's utilisation section. */
export function pointUtilisation(u: Utilisation | undefined): PointUtilisation | null {
  if (!u) return null;
  const s = u.servers.find((x) => x.name === u.busiestServer) ?? null;
  const c = u.caches.find((x) => x.name === u.busiestCache) ?? null;
  return {
    server: s ? { name: s.name, poolPeakInUse: s.poolPeakInUse, poolSize: s.poolSize, poolUse: s.poolUse, poolPeakWaiting: s.poolPeakWaiting, peakOpsPerS: s.peakOpsPerS } : null,
    cache: c ? { name: c.name, peakBytes: c.peakBytes, capacityBytes: c.capacityBytes, use: c.use, evictions: c.evictions } : null,
    queue: { ...u.queue },
  };
}

/** Orders points by cost: the first dimension decides, then the next (see ORDER_RULE). */
export function costCompare(dimensions: SweepDimension[]): (a: Record<string, VaryValue>, b: Record<string, VaryValue>) => number {
  return (a, b) => {
    for (const d of dimensions) {
      const x = a[d.path]!;
      const y = b[d.path]!;
      let c: number;
      if (typeof x === 'number' && typeof y === 'number') c = x - y;
      else if (typeof x === 'boolean' && typeof y === 'boolean') c = Number(x) - Number(y);
      else c = d.values.indexOf(x) - d.values.indexOf(y);
      if (c !== 0) return c;
    }
    return 0;
  };
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

function joinPath(dir: string, file: string): string {
  return dir.endsWith('/') ? dir + file : `${dir}/${file}`;
}

export function rerunCommand(input: Pick<SweepInput, 'script' | 'outDir' | 'seed' | 'speed' | 'scale' | 'env' | 'mode'>, topologyFile: string): string {
  const env = Object.entries(input.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  if (input.mode === 'simulate') return ['scalegram', 'simulate', input.script, '--topology', joinPath(input.outDir, topologyFile), '--seed', String(input.seed), '--scale', String(input.scale), ...env].map(shellQuote).join(' ');
  return ['scalegram', 'run', input.script, '--topology', joinPath(input.outDir, topologyFile), '--seed', String(input.seed), '--speed', String(input.speed), '--scale', String(input.scale), ...env].map(shellQuote).join(' ');
}

/** sweep.json: one row per point, and the cheapest point that met every threshold. */
export function sweepDocument(input: SweepInput): SweepDocument {
  const rows: SweepRow[] = input.points.map((p) => {
    const thresholds = (p.result?.thresholds ?? []).map((t) => ({ metric: t.metric, expression: t.expression, ok: t.ok, value: num(t.value) }));
    return {
      name: p.name,
      values: p.values,
      label: labelOf(p.values),
      status: p.status,
      exitCode: p.exitCode,
      wallMs: p.wallMs === null ? null : Math.round(p.wallMs),
      error: p.error,
      topologyFile: p.topologyFile,
      resultDir: p.name,
      thresholds,
      failedThresholds: p.status === 'passed' || p.status === 'failed' ? thresholds.filter((t) => !t.ok).map((t) => `${t.metric} ${t.expression}`) : [],
      figures: p.result && (p.status === 'passed' || p.status === 'failed') ? pointFigures(p.result, p.summary) : null,
      utilisation: p.result && (p.status === 'passed' || p.status === 'failed') ? pointUtilisation(p.result.telemetry?.utilisation) : null,
      rerun: rerunCommand(input, p.topologyFile),
      iterationErrors: iterationErrorsOf(p.result),
      saturated: saturatedOf(p.result),
      invalid: p.result && (p.status === 'passed' || p.status === 'failed') ? pointValidity(p.result, p.summary).reasons : [],
      harnessSaturated: harnessOf(p.result),
      cheapest: false,
    };
  });
  const cmp = costCompare(input.dimensions);
  const cheapest = rows.filter((r) => r.status === 'passed' && r.iterationErrors.count === 0 && r.saturated === null && r.invalid.length === 0 && r.harnessSaturated === null).sort((a, b) => cmp(a.values, b.values))[0] ?? null;
  if (cheapest) cheapest.cheapest = true;
  const counts: Record<PointStatus, number> = { passed: 0, failed: 0, crashed: 0, interrupted: 0, 'not-run': 0 };
  for (const r of rows) counts[r.status]++;
  return {
    format: SWEEP_FORMAT,
    scenario: input.scenario,
    script: input.script,
    base: input.base,
    seed: input.seed,
    speed: input.speed,
    scale: input.scale,
    env: input.env,
    startedAt: input.startedAt,
    dimensions: input.dimensions,
    order: ORDER_RULE,
    cheapest: cheapest?.name ?? null,
    counts,
    rows,
  };
}

// --------------------------------------------------------------------------------- formatting

const DASH = '–';

function fmt(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return DASH;
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits);
}

function pct(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return DASH;
  const p = 100 * x;
  if (p === 0) return '0%';
  if (p < 0.1) return '<0.1%';
  return `${p < 10 ? p.toFixed(1) : p.toFixed(0)}%`;
}

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

const VERDICT: Record<PointStatus, string> = { passed: '✓', failed: '✗', crashed: 'crashed', interrupted: 'interrupted', 'not-run': 'not run' };

function verdict(r: SweepRow): string {
  if (r.status === 'crashed') return `crashed (exit ${r.exitCode ?? 'signal'})`;
  const errors = r.iterationErrors?.count ?? 0;
  const sat = r.saturated ? ` ⚠ saturated: ${r.saturated.resource} at ${virtualTimeOfDay(r.saturated.atMs)}` : '';
  const invalid = r.invalid?.length ? ` ⚠ not valid for conclusions: ${r.invalid.join('; ')}` : '';
  const harness = r.harnessSaturated ? ` ⚠ harness saturated: event loop ${fmt(r.harnessSaturated.p99Ms, 0)} ms late at p99` : '';
  return (errors > 0 ? `${VERDICT[r.status]} ⚠ ${errors} iteration${errors === 1 ? '' : 's'} threw: ${r.iterationErrors.first ?? ''}` : VERDICT[r.status]) + sat + invalid + harness;
}

/** A live point whose event loop ran HARNESS_LOOP_P99_MS or more late at p99 (null: it did not, or no measure). */
export function harnessOf(result: PointResult | null): SweepRow['harnessSaturated'] {
  const h = harnessFigures(result?.harness);
  return h?.saturated ? { p99Ms: h.p99Ms, maxMs: h.maxMs } : null;
}

/** Whether a point's run can support conclusions (the rule the run's own report applies). */
export function pointValidity(result: PointResult, summary: PointSummary | null): { valid: boolean; reasons: string[] } {
  return runValidity(result.iterations, pointFigures(result, summary).routes);
}

function saturatedOf(result: PointResult | null): SweepRow['saturated'] {
  const first = result?.simulation?.saturation?.[0];
  return first ? { resource: first.resource, atMs: first.atMs } : null;
}

function iterationErrorsOf(result: PointResult | null): SweepRow['iterationErrors'] {
  const it = result?.iterations;
  const first = it?.errorMessages?.[0];
  return { count: it?.errors ?? 0, first: first ? `${first.scenario}: ${first.message.slice(0, 160)}` : null };
}

function serverCell(r: SweepRow): string {
  const s = r.utilisation?.server;
  if (!s) return DASH;
  const waiting = s.poolPeakWaiting > 0 ? `, ${fmt(s.poolPeakWaiting, 0)} waiting` : '';
  return `${s.name}: pool ${s.poolPeakInUse}/${s.poolSize} (${pct(s.poolUse)}${waiting}), ${fmt(s.peakOpsPerS, 0)} ops/s`;
}

function cacheCell(r: SweepRow): string {
  const c = r.utilisation?.cache;
  if (!c) return DASH;
  return `${c.name}: ${bytes(c.peakBytes)} of ${bytes(c.capacityBytes)} (${pct(c.use)})${c.evictions > 0 ? `, ${fmt(c.evictions, 0)} evicted` : ''}`;
}

/** Short utilisation for a grid cell: busiest server's pool and ops/s, fullest cache node. */
function utilShort(r: SweepRow): string {
  const s = r.utilisation?.server;
  const c = r.utilisation?.cache;
  const parts: string[] = [];
  if (s) parts.push(`db pool ${pct(s.poolUse)} · ${fmt(s.peakOpsPerS, 0)} ops/s`);
  if (c) parts.push(`cache ${pct(c.use)}`);
  return parts.join(' · ');
}

function mdEscape(s: string): string {
  return s.replaceAll('|', '\\|');
}

function mdTable(head: string[], rows: string[][]): string[] {
  return [`| ${head.map(mdEscape).join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(mdEscape).join(' | ')} |`)];
}

function envText(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `-e ${k}=${v}`)
    .join(' ');
}

/** All route names across rows, busiest first (by the total count). */
function routeNames(rows: SweepRow[]): string[] {
  const total = new Map<string, number>();
  for (const r of rows) for (const x of r.figures?.routes ?? []) total.set(x.name, (total.get(x.name) ?? 0) + x.count);
  return [...total.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([n]) => n);
}

/** Every distinct threshold (metric + expression) across rows, first-seen order. */
function thresholdKeys(rows: SweepRow[]): Array<{ metric: string; expression: string }> {
  const seen = new Map<string, { metric: string; expression: string }>();
  for (const r of rows) for (const t of r.thresholds) seen.set(`${t.metric} ${t.expression}`, { metric: t.metric, expression: t.expression });
  return [...seen.values()];
}

function gridCellText(r: SweepRow | undefined): string {
  if (!r) return DASH;
  const mark = r.cheapest ? ' **← cheapest**' : '';
  if (!r.figures) return `${verdict(r)}${mark}`;
  const util = utilShort(r);
  return `${verdict(r)} p95 ${fmt(r.figures.httpP95Ms)} ms${util ? ` · ${util}` : ''}${mark}`;
}

function headline(doc: SweepDocument): string {
  const cheapest = doc.rows.find((r) => r.cheapest);
  if (cheapest) {
    const dropped = cheapest.figures && cheapest.figures.droppedShare > 0.1 ? ` (note: it dropped ${pct(cheapest.figures.droppedShare)} of its planned iterations, so it served less than the planned load)` : '';
    return `**Cheapest configuration meeting every threshold: \`${cheapest.label}\`** — ${serverCell(cheapest)}; ${cacheCell(cheapest)}${dropped}.`;
  }
  const ran = doc.counts.passed + doc.counts.failed;
  if (ran === 0) return '**No point produced a result.**';
  const harness = doc.rows.filter((r) => r.status === 'passed' && !r.saturated && !r.invalid?.length && r.harnessSaturated);
  if (harness.length) return `**No configuration met every threshold on a harness that kept up** (${harness.length} passed their thresholds while an event loop of the harness (the server's or the load generator's) ran ${HARNESS_LOOP_P99_MS} ms or more late at p99, so their latencies describe this machine: lower --speed or --scale, or run on a quieter machine; ${ran} of ${doc.rows.length} points ran to the end).`;
  const invalid = doc.rows.filter((r) => r.status === 'passed' && !r.saturated && r.invalid?.length);
  if (invalid.length) return `**No configuration met every threshold in a run valid for conclusions** (${invalid.length} passed their thresholds in a run that was not: ${invalid.map((r) => `${r.label}: ${r.invalid[0]}`).join('; ')}; ${ran} of ${doc.rows.length} points ran to the end).`;
  const saturated = doc.rows.filter((r) => r.status === 'passed' && r.saturated);
  if (saturated.length) return `**No configuration met every threshold without saturating a resource** (${saturated.length} passed their thresholds while ${saturated.map((r) => r.saturated!.resource).filter((x, i, a) => a.indexOf(x) === i).join(', ')} saturated; ${ran} of ${doc.rows.length} points ran to the end).`;
  return `**No configuration met every threshold** (${ran} of ${doc.rows.length} points ran to the end).`;
}

function droppedWarning(rows: SweepRow[]): string {
  return `${rows.length === 1 ? 'One point' : `${rows.length} points`} (${rows.map((r) => `${r.label}: ${pct(r.figures!.droppedShare)}`).join(', ')}) dropped more than 10% of the planned iterations: they served less than the planned load, so their figures flatter them. Lower --speed or --scale (or raise maxVUs) for comparable points.`;
}

function verdictView(doc: SweepDocument): string[] {
  const dims = doc.dimensions;
  const out: string[] = [];
  if (dims.length === 2) {
    const [rowsDim, colsDim] = dims as [SweepDimension, SweepDimension];
    const find = (a: VaryValue, b: VaryValue) => doc.rows.find((r) => r.values[rowsDim.path] === a && r.values[colsDim.path] === b);
    out.push(`Rows: \`${rowsDim.path}\`; columns: \`${colsDim.path}\`. Each cell: verdict, http p95, peak utilisation of the busiest server (pool, ops/s) and cache node.`, '');
    out.push(...mdTable([`${rowsDim.path} ↓ / ${colsDim.path} →`, ...colsDim.values.map(String)], rowsDim.values.map((a) => [String(a), ...colsDim.values.map((b) => gridCellText(find(a, b)))])));
  } else {
    out.push('Each row: verdict, http p95, peak utilisation of the busiest server (pool, ops/s) and cache node.', '');
    out.push(
      ...mdTable(
        [...dims.map((d) => d.path), 'verdict', 'http p95 ms', 'busiest server', 'busiest cache node', 'failed thresholds'],
        doc.rows.map((r) => [...dims.map((d) => String(r.values[d.path])), `${verdict(r)}${r.cheapest ? ' **← cheapest**' : ''}`, fmt(r.figures?.httpP95Ms), serverCell(r), cacheCell(r), r.failedThresholds.join('; ') || DASH]),
      ),
    );
  }
  return out;
}

/** sweep.md */
export function sweepMarkdown(doc: SweepDocument, input: Pick<SweepInput, 'outDir'>): string {
  const out: string[] = [];
  const varied = doc.dimensions.map((d) => `\`${d.path}\` = ${d.values.map(String).join(', ')}`).join(' · ');
  out.push(`# Sweep: ${doc.scenario} over ${doc.rows.length} topologies`, '');
  out.push(`Scenario \`${doc.script}\` on \`${doc.base.name}\` (${doc.base.source}) · seed ${doc.seed}${doc.mode === 'simulate' ? ' · simulated' : ` · speed ${doc.speed}`} · scale ${doc.scale}${Object.keys(doc.env).length ? ` · \`${envText(doc.env)}\`` : ''} · started ${doc.startedAt}`, '');
  out.push(`Varied: ${varied}.`, '');
  const c = doc.counts;
  out.push(`Points: ${c.passed} met every threshold, ${c.failed} failed thresholds${c.crashed ? `, ${c.crashed} crashed` : ''}${c.interrupted ? `, ${c.interrupted} interrupted` : ''}${c['not-run'] ? `, ${c['not-run']} not run` : ''}.`, '');
  out.push(headline(doc), '', `(${doc.order}.)`, '');
  const thresholds = thresholdKeys(doc.rows);
  if (thresholds.length === 0 && c.passed + c.failed > 0) out.push('The scenario declares no thresholds: every point that ran passes.', '');
  const short = doc.rows.filter((r) => r.figures && r.figures.droppedShare > 0.1);
  if (short.length) out.push(`⚠ ${droppedWarning(short)}`, '');

  out.push('## Verdicts', '', ...verdictView(doc), '');

  const ran = doc.rows.filter((r) => r.figures);
  if (ran.length) {
    out.push('## Key figures', '');
    out.push(
      ...mdTable(
        ['point', 'verdict', 'http p95 ms', 'req/s', 'errors', 'cache hit min / median', 'shard skew', 'server skew', 'fan-out lag p99 ms', 'replica lag max ms', 'stale reads', 'dropped iterations', 'wall time'],
        ran.map((r) => {
          const f = r.figures!;
          return [
            r.label,
            verdict(r),
            fmt(f.httpP95Ms),
            fmt(f.httpReqPerS, 0),
            pct(f.errorRate),
            f.cacheHitRatio ? `${pct(f.cacheHitRatio.min)} / ${pct(f.cacheHitRatio.med)}` : DASH,
            fmt(f.shardSkew, 2),
            fmt(f.serverSkew, 2),
            fmt(f.fanoutLagP99Ms),
            fmt(f.replicaLagMaxMs),
            fmt(f.staleReads, 0),
            f.droppedIterations > 0 ? `${fmt(f.droppedIterations, 0)} (${pct(f.droppedShare)})` : '0',
            r.wallMs === null ? DASH : `${(r.wallMs / 1000).toFixed(0)} s`,
          ];
        }),
      ),
      '',
    );

    const routes = routeNames(ran);
    if (routes.length) {
      out.push('## HTTP p95 per route (ms)', '');
      out.push(...mdTable(['point', ...routes], ran.map((r) => [r.label, ...routes.map((n) => fmt(r.figures!.routes.find((x) => x.name === n)?.p95Ms))])), '');
    }

    if (thresholds.length) {
      out.push('## Thresholds', '');
      out.push(
        ...mdTable(
          ['point', ...thresholds.map((t) => `${t.metric} ${t.expression}`)],
          ran.map((r) => [
            r.label,
            ...thresholds.map((k) => {
              const t = r.thresholds.find((x) => x.metric === k.metric && x.expression === k.expression);
              return t ? `${t.ok ? '✓' : '✗'} ${fmt(t.value, 3)}` : DASH;
            }),
          ]),
        ),
        '',
      );
    }

    out.push('## Peak utilisation', '');
    out.push(
      'Peaks from when the load began (seeding in setup excluded; whole run for results older than that), as the topology measured them: connections in use at once on the busiest node of a server against `database.poolSize` (high-water marks, so a burst between samples counts), queries per second in its busiest second (no budget is configured for it: compare points), key + value bytes held against `cache.capacityBytes`, jobs waiting against `queue.maxDepth`, and jobs running against `queue.workers`. The busiest server is the one with the fullest pool (ties: the most ops/s); the busiest cache node the fullest.',
      '',
    );
    out.push(
      ...mdTable(
        ['point', 'busiest server', 'busiest cache node', 'queue depth peak', 'workers peak'],
        ran.map((r) => {
          const q = r.utilisation?.queue;
          return [r.label, serverCell(r), cacheCell(r), q ? `${fmt(q.peakDepth, 0)} of ${fmt(q.maxDepth, 0)} (${pct(q.depthUse)})` : DASH, q ? `${fmt(q.peakRunning, 0)} of ${fmt(q.workers, 0)} (${pct(q.workerUse)})` : DASH];
        }),
      ),
      '',
    );
  }

  const broken = doc.rows.filter((r) => r.status === 'crashed' || r.status === 'interrupted');
  if (broken.length) {
    out.push('## Points without a result', '');
    for (const r of broken) {
      out.push(`### ${r.label} — ${verdict(r)}`, '');
      if (r.error) out.push('```', r.error.trimEnd(), '```', '');
    }
  }

  out.push('## Reproduce one point', '');
  out.push(`Every point ran with the same seed; only its topology differs. Topology files and result directories are in \`${input.outDir}\`:`, '');
  out.push(...mdTable(['point', 'topology', 'result', 'command'], doc.rows.map((r) => [r.label, r.topologyFile, r.status === 'not-run' ? DASH : `${r.resultDir}/`, `\`${r.rerun}\``])), '');
  return out.join('\n');
}

// ------------------------------------------------------------------------------------- HTML

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

function htmlTable(head: string[], rows: Array<Array<{ html: string; cls?: string }>>, cls = ''): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c) => `<td${c.cls ? ` class="${c.cls}"` : ''}>${c.html}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

function statusClass(r: SweepRow | undefined): string {
  if (!r) return '';
  return `${r.status}${r.saturated ? ' saturated' : ''}${r.invalid?.length || r.harnessSaturated ? ' invalid' : ''}${r.cheapest ? ' cheapest' : ''}`;
}

function gridCellHtml(r: SweepRow | undefined): string {
  if (!r) return DASH;
  const lines = [`<b>${esc(verdict(r))}</b>${r.cheapest ? ' <span class="tag">cheapest</span>' : ''}`];
  if (r.figures) {
    lines.push(`p95 ${esc(fmt(r.figures.httpP95Ms))} ms`);
    const s = r.utilisation?.server;
    const c = r.utilisation?.cache;
    if (s) lines.push(`${esc(s.name)} pool ${esc(pct(s.poolUse))} · ${esc(fmt(s.peakOpsPerS, 0))} ops/s`);
    if (c) lines.push(`${esc(c.name)} ${esc(pct(c.use))} of capacity`);
    if (r.failedThresholds.length) lines.push(`<span class="why">✗ ${esc(r.failedThresholds.join('; '))}</span>`);
  }
  return lines.join('<br>');
}

/** Horizontal bars, one per point: a figure with its scale (inline SVG, no script). */
function barChart(title: string, rows: SweepRow[], value: (r: SweepRow) => number | null, label: (v: number) => string, max?: number): string {
  const vals = rows.map(value);
  const top = max ?? Math.max(0, ...vals.filter((v): v is number => v !== null));
  // Wide enough for the longest label at ~7 px per character of the 12 px font.
  const labelW = Math.min(640, Math.max(120, 7 * Math.max(0, ...rows.map((r) => r.label.length)) + 12));
  const barW = 360;
  const rowH = 22;
  const h = rows.length * rowH + 8;
  const items = rows.map((r, i) => {
    const v = vals[i] ?? null;
    const y = 4 + i * rowH;
    const w = v === null || top <= 0 ? 0 : Math.max(1, (Math.min(v, top) / top) * barW);
    const fill = r.status === 'passed' ? '#2e7d32' : r.status === 'failed' ? '#c62828' : '#9e9e9e';
    return (
      `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(r.label)}</text>` +
      `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${fill}"${r.cheapest ? ' stroke="#111" stroke-width="2"' : ''}/>` +
      `<text x="${labelW + w + 6}" y="${y + 15}">${v === null ? DASH : esc(label(v))}</text>`
    );
  });
  return `<figure><figcaption>${esc(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 120}" height="${h}" role="img" aria-label="${esc(title)}">${items.join('')}</svg></figure>`;
}

const CSS = `body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1b1b;max-width:1400px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555}.headline{font-size:15px;padding:10px 12px;background:#f3f6fa;border-left:4px solid #1565c0;margin:12px 0}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #d0d0d0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid td{min-width:170px}.passed{background:#e8f5e9}.failed{background:#ffebee}.passed.saturated,.passed.invalid{background:#fff8e1}.crashed,.interrupted,.not-run{background:#eeeeee;color:#555}
.cheapest{outline:3px solid #1565c0;outline-offset:-3px}.tag{background:#1565c0;color:#fff;border-radius:3px;padding:0 5px;font-size:12px}
.why{color:#b71c1c;font-size:12px}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}pre{background:#f7f7f7;padding:8px;overflow:auto}
figure{margin:8px 0 16px}figcaption{font-weight:600;margin-bottom:4px}svg text{font:12px system-ui,sans-serif;fill:#222}.note{color:#555;max-width:900px}.warn{background:#fff8e1;border-left:4px solid #f9a825;padding:8px 12px}`;

/** sweep.html: self-contained (inline CSS and SVG, no script, no external resources). */
export function sweepHtml(doc: SweepDocument, input: Pick<SweepInput, 'outDir'>): string {
  const rows = doc.rows;
  const ran = rows.filter((r) => r.figures);
  const dims = doc.dimensions;
  const parts: string[] = [];
  parts.push(`<h1>Sweep: ${esc(doc.scenario)} over ${rows.length} topologies</h1>`);
  parts.push(
    `<p class="meta">Scenario <code>${esc(doc.script)}</code> on <code>${esc(doc.base.name)}</code> (${esc(doc.base.source)}) · seed ${doc.seed}${doc.mode === 'simulate' ? ' · simulated' : ` · speed ${doc.speed}`} · scale ${doc.scale}${Object.keys(doc.env).length ? ` · <code>${esc(envText(doc.env))}</code>` : ''} · started ${esc(doc.startedAt)}<br>Varied: ${dims.map((d) => `<code>${esc(d.path)}</code> = ${esc(d.values.map(String).join(', '))}`).join(' · ')}</p>`,
  );
  const headlineText = headline(doc).replaceAll('**', '').replace(/`([^`]*)`/g, '$1');
  parts.push(`<p class="headline">${esc(headlineText)}<br><small>${esc(doc.order)}.</small></p>`);
  const short = rows.filter((r) => r.figures && r.figures.droppedShare > 0.1);
  if (short.length) parts.push(`<p class="warn">⚠ ${esc(droppedWarning(short))}</p>`);

  parts.push('<h2>Verdicts</h2>');
  if (dims.length === 2) {
    const [a, b] = dims as [SweepDimension, SweepDimension];
    const find = (x: VaryValue, y: VaryValue) => rows.find((r) => r.values[a.path] === x && r.values[b.path] === y);
    parts.push(
      htmlTable(
        [`${a.path} ↓ / ${b.path} →`, ...b.values.map(String)],
        a.values.map((x) => [{ html: `<b>${esc(String(x))}</b>` }, ...b.values.map((y) => ({ html: gridCellHtml(find(x, y)), cls: statusClass(find(x, y)) }))]),
        'grid',
      ),
    );
  } else {
    parts.push(
      htmlTable(
        [...dims.map((d) => d.path), 'verdict', 'http p95 ms', 'busiest server', 'busiest cache node', 'failed thresholds'],
        rows.map((r) => [
          ...dims.map((d) => ({ html: esc(String(r.values[d.path])), cls: statusClass(r) })),
          { html: `<b>${esc(verdict(r))}</b>${r.cheapest ? ' <span class="tag">cheapest</span>' : ''}`, cls: statusClass(r) },
          { html: esc(fmt(r.figures?.httpP95Ms)), cls: 'num' },
          { html: esc(serverCell(r)) },
          { html: esc(cacheCell(r)) },
          { html: `<span class="why">${esc(r.failedThresholds.join('; '))}</span>` },
        ]),
      ),
    );
  }

  if (ran.length) {
    parts.push('<h2>Charts</h2>');
    parts.push(barChart('http_req_duration p(95), ms (green: met every threshold; red: failed one; outlined: cheapest)', ran, (r) => r.figures!.httpP95Ms, (v) => `${fmt(v)} ms`));
    parts.push(barChart('Busiest server: peak connections in use ÷ poolSize', ran, (r) => r.utilisation?.server?.poolUse ?? null, (v) => pct(v), 1));
    parts.push(barChart('Busiest server: peak queries per second', ran, (r) => r.utilisation?.server?.peakOpsPerS ?? null, (v) => `${fmt(v, 0)} ops/s`));
    parts.push(barChart('Busiest cache node: peak bytes ÷ capacityBytes', ran, (r) => r.utilisation?.cache?.use ?? null, (v) => pct(v), 1));

    parts.push('<h2>Key figures</h2>');
    parts.push(
      htmlTable(
        ['point', 'verdict', 'http p95 ms', 'req/s', 'errors', 'cache hit min / median', 'shard skew', 'server skew', 'fan-out lag p99 ms', 'replica lag max ms', 'stale reads', 'dropped iterations', 'wall time'],
        ran.map((r) => {
          const f = r.figures!;
          const n = (s: string) => ({ html: esc(s), cls: 'num' });
          return [
            { html: esc(r.label), cls: statusClass(r) },
            { html: esc(verdict(r)), cls: statusClass(r) },
            n(fmt(f.httpP95Ms)),
            n(fmt(f.httpReqPerS, 0)),
            n(pct(f.errorRate)),
            n(f.cacheHitRatio ? `${pct(f.cacheHitRatio.min)} / ${pct(f.cacheHitRatio.med)}` : DASH),
            n(fmt(f.shardSkew, 2)),
            n(fmt(f.serverSkew, 2)),
            n(fmt(f.fanoutLagP99Ms)),
            n(fmt(f.replicaLagMaxMs)),
            n(fmt(f.staleReads, 0)),
            n(f.droppedIterations > 0 ? `${fmt(f.droppedIterations, 0)} (${pct(f.droppedShare)})` : '0'),
            n(r.wallMs === null ? DASH : `${(r.wallMs / 1000).toFixed(0)} s`),
          ];
        }),
      ),
    );
    const routes = routeNames(ran);
    if (routes.length) {
      parts.push('<h2>HTTP p95 per route (ms)</h2>');
      parts.push(htmlTable(['point', ...routes], ran.map((r) => [{ html: esc(r.label) }, ...routes.map((name) => ({ html: esc(fmt(r.figures!.routes.find((x) => x.name === name)?.p95Ms)), cls: 'num' }))])));
    }
    const thresholds = thresholdKeys(ran);
    if (thresholds.length) {
      parts.push('<h2>Thresholds</h2>');
      parts.push(
        htmlTable(
          ['point', ...thresholds.map((t) => `${t.metric} ${t.expression}`)],
          ran.map((r) => [
            { html: esc(r.label) },
            ...thresholds.map((k) => {
              const t = r.thresholds.find((x) => x.metric === k.metric && x.expression === k.expression);
              return t ? { html: `${t.ok ? '✓' : '✗'} ${esc(fmt(t.value, 3))}`, cls: t.ok ? 'passed' : 'failed' } : { html: DASH };
            }),
          ]),
        ),
      );
    }
    parts.push('<h2>Peak utilisation</h2>');
    parts.push(
      '<p class="note">Peaks from when the load began (seeding in setup excluded), as the topology measured them: connections in use at once on the busiest node of a server against <code>database.poolSize</code> (high-water marks), queries per second in its busiest second (no budget is configured for it: compare points), key + value bytes held against <code>cache.capacityBytes</code>, jobs waiting against <code>queue.maxDepth</code>, jobs running against <code>queue.workers</code>.</p>',
    );
    parts.push(
      htmlTable(
        ['point', 'busiest server', 'busiest cache node', 'queue depth peak', 'workers peak'],
        ran.map((r) => {
          const q = r.utilisation?.queue;
          return [
            { html: esc(r.label) },
            { html: esc(serverCell(r)) },
            { html: esc(cacheCell(r)) },
            { html: esc(q ? `${fmt(q.peakDepth, 0)} of ${fmt(q.maxDepth, 0)} (${pct(q.depthUse)})` : DASH) },
            { html: esc(q ? `${fmt(q.peakRunning, 0)} of ${fmt(q.workers, 0)} (${pct(q.workerUse)})` : DASH) },
          ];
        }),
      ),
    );
  }

  const broken = rows.filter((r) => r.status === 'crashed' || r.status === 'interrupted');
  if (broken.length) {
    parts.push('<h2>Points without a result</h2>');
    for (const r of broken) parts.push(`<h3>${esc(r.label)} — ${esc(verdict(r))}</h3>${r.error ? `<pre>${esc(r.error.trimEnd())}</pre>` : ''}`);
  }
  parts.push('<h2>Reproduce one point</h2>');
  parts.push(`<p class="note">Every point ran with the same seed; only its topology differs. Topology files and result directories are in <code>${esc(input.outDir)}</code>.</p>`);
  parts.push(htmlTable(['point', 'topology', 'result', 'command'], rows.map((r) => [{ html: esc(r.label) }, { html: `<code>${esc(r.topologyFile)}</code>` }, { html: r.status === 'not-run' ? DASH : `<code>${esc(r.resultDir)}/</code>` }, { html: `<code>${esc(r.rerun)}</code>` }])));

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sweep: ${esc(doc.scenario)}</title><style>${CSS}</style></head>
<body>
${parts.join('\n')}
</body></html>
`;
}

/** The lines the CLI prints when the sweep ends: one per point, then the headline. */
export function sweepText(doc: SweepDocument): string {
  const width = Math.max(...doc.rows.map((r) => r.label.length), 5);
  const lines = doc.rows.map((r) => {
    const f = r.figures;
    const fig = f ? `  p95 ${fmt(f.httpP95Ms)} ms  ${utilShort(r)}` : r.error ? `  ${r.error.trim().split('\n')[0]!.replace(/^scalegram run: /, '').slice(0, 160)}` : '';
    const why = r.failedThresholds.length ? `  ✗ ${r.failedThresholds.join('; ')}` : '';
    return `  ${r.cheapest ? '→' : ' '} ${r.label.padEnd(width)}  ${verdict(r).padEnd(11)}${fig}${why}`;
  });
  return [...lines, '', headline(doc).replaceAll('**', '').replace(/`([^`]*)`/g, '$1'), ''].join('\n');
}

/** sweep.json, sweep.md and sweep.html from the sweep's plan and its points' results. */
export function sweepReport(input: SweepInput): { document: SweepDocument; markdown: string; html: string; text: string } {
  const document = sweepDocument(input);
  return { document, markdown: sweepMarkdown(document, input), html: sweepHtml(document, input), text: sweepText(document) };
}
