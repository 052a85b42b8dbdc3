// `scalegram validate`'s verdict, as a pure function of two result documents — the scenario run
// live and simulated with one seed — and its three renderings (validate.json, .md, .html).
// Each figure is judged against its tolerance; the live run's harness says whether it counts at all.

import { scenarioEndMs, type ScenarioOptions } from '../sim/model/plan.ts';
import { num } from '../scenarios/runner/format.ts';
import { HARNESS_LOOP_P99_MS, keyFigures, naturalCompare, type KeyFigures } from '../scenarios/runner/key-figures.ts';
import type { ResultDocument } from '../scenarios/runner/results.ts';
import { page } from './html/page.ts';
import { esc } from './plots/format.ts';

export const VALIDATE_FORMAT = 'scalegram-validate/1';

/** The tolerances of issue 10: relative for latencies, operations, lag and throughput; absolute points for the hit ratio. */
export const TOLERANCES = {
  routeLatency: 0.15,
  shardOps: 0.05,
  hitRatioPoints: 0.02,
  fanoutLagP50: 0.15,
  deliveriesPerS: 0.1,
} as const;

export interface ValidationRow {
  group: 'route' | 'shard' | 'cache' | 'fan-out';
  figure: string;
  unit: 'ms' | 'count' | 'ratio' | 'per_s';
  live: number | null;
  simulated: number | null;
  /** simulated − live, over live (relative rows) or in points (the hit ratio); null when either is missing. */
  diff: number | null;
  /** The tolerance, in the same terms as diff. */
  tolerance: number;
  relative: boolean;
  pass: boolean;
}

export interface ValidationInput {
  scenario: string;
  seed: number;
  scale: number;
  speed: number;
  env: Record<string, string>;
  calibration: { file: string; how: string; machine: string; commit: string };
  machine: string;
  liveDir: string;
  simulatedDir: string;
}

export interface ValidationDocument extends ValidationInput {
  format: typeof VALIDATE_FORMAT;
  rows: ValidationRow[];
  passed: number;
  failed: number;
  /** Why the live run cannot be compared (a saturated harness, an invalid run); empty when it can. */
  liveInvalid: string[];
  /** Database servers with no operations in either run, left out of the rows. */
  idleServers: string[];
  /** The live run's event loops: the load generator's and the server's delay p99 (ms; null when not measured). */
  liveHarness: { loadGeneratorP99Ms: number | null; serverP99Ms: number | null };
  verdict: 'passed' | 'failed' | 'not valid';
}

function row(group: ValidationRow['group'], figure: string, unit: ValidationRow['unit'], live: number | null, simulated: number | null, tolerance: number, relative = true): ValidationRow {
  let diff: number | null = null;
  if (live !== null && simulated !== null) {
    if (!relative) diff = simulated - live;
    else if (live === 0) diff = simulated === 0 ? 0 : Infinity;
    else diff = (simulated - live) / live;
  }
  return { group, figure, unit, live, simulated, diff, tolerance, relative, pass: diff !== null && Math.abs(diff) <= tolerance + 1e-12 };
}

/** The scenarios' planned length (ms, after --speed): the same in both modes, so deliveries per second share a denominator. */
export function plannedMs(doc: ResultDocument): number {
  const ends = doc.options.scenarios.map((s) => scenarioEndMs(s as unknown as ScenarioOptions));
  return Math.max(1, ...ends);
}

/**
 * Per-physical-server operations of the load, by name, over every database cluster: a live run's
 * seeding (before the load began) is taken off; a simulation has none.
 */
function serverOps(k: KeyFigures, d: ResultDocument): Map<string, number> {
  const out = new Map<string, number>();
  const before = d.serverOpsAtLoadStart ?? {};
  for (const c of k.clusters) for (const s of c.servers) out.set(k.clusters.length > 1 ? `${c.cluster}/${s.name}` : s.name, s.ops - (before[`${c.cluster}/${s.name}`] ?? 0));
  return out;
}

/** Compares a live run with its simulation (the routes the v1 API serves; /_sim admin routes left out). */
export function validation(live: ResultDocument, simulated: ResultDocument, input: ValidationInput): ValidationDocument {
  const L = keyFigures(live);
  const S = keyFigures(simulated);
  const rows: ValidationRow[] = [];
  const simRoutes = new Map(S.routes.map((r) => [r.name, r]));
  const liveRoutes = new Map(L.routes.map((r) => [r.name, r]));
  const names = [...new Set([...liveRoutes.keys(), ...simRoutes.keys()])].filter((n) => !n.startsWith('sim_')).sort(naturalCompare);
  for (const n of names) {
    const l = liveRoutes.get(n) ?? null;
    const s = simRoutes.get(n) ?? null;
    rows.push(row('route', `${n} p50`, 'ms', l?.p50 ?? null, s?.p50 ?? null, TOLERANCES.routeLatency));
    rows.push(row('route', `${n} p99`, 'ms', l?.p99 ?? null, s?.p99 ?? null, TOLERANCES.routeLatency));
  }
  const lo = serverOps(L, live);
  const so = serverOps(S, simulated);
  // A server idle in both runs (no logical shard of the population on it) agrees trivially: counted, not listed.
  const idleServers: string[] = [];
  for (const name of [...new Set([...lo.keys(), ...so.keys()])].sort(naturalCompare)) {
    if ((lo.get(name) ?? 0) === 0 && (so.get(name) ?? 0) === 0) idleServers.push(name);
    else rows.push(row('shard', `${name} operations`, 'count', lo.get(name) ?? null, so.get(name) ?? null, TOLERANCES.shardOps));
  }
  if (L.caches || S.caches) rows.push(row('cache', 'hit ratio', 'ratio', L.caches?.hitRatio ?? null, S.caches?.hitRatio ?? null, TOLERANCES.hitRatioPoints, false));
  if (L.fanout || S.fanout) {
    rows.push(row('fan-out', 'delivery lag p50', 'ms', L.fanout?.lagP50 ?? null, S.fanout?.lagP50 ?? null, TOLERANCES.fanoutLagP50));
    const perS = (k: KeyFigures, d: ResultDocument) => (k.fanout ? k.fanout.deliveries / (plannedMs(d) / 1000) : 0);
    rows.push(row('fan-out', 'deliveries/s', 'per_s', perS(L, live), perS(S, simulated), TOLERANCES.deliveriesPerS));
  }
  const liveInvalid: string[] = [];
  if (L.harness?.saturated) liveInvalid.push(`the live run's ${L.harness.side} event loop was saturated (delay p99 ${num(L.harness.p99Ms)} ms): lower --scale or --speed`);
  if (!L.validity.valid) liveInvalid.push(...L.validity.reasons.map((r) => `the live run is not valid for conclusions: ${r}`));
  const failed = rows.filter((r) => !r.pass).length;
  return {
    format: VALIDATE_FORMAT,
    ...input,
    rows,
    passed: rows.length - failed,
    failed,
    liveInvalid,
    idleServers,
    liveHarness: { loadGeneratorP99Ms: live.harness?.eventLoopDelayMs.p99 ?? null, serverP99Ms: live.harness?.serverEventLoopDelayMs?.p99 ?? null },
    verdict: liveInvalid.length ? 'not valid' : failed ? 'failed' : 'passed',
  };
}

function value(v: number | null, unit: ValidationRow['unit']): string {
  if (v === null) return '–';
  if (unit === 'ms') return `${num(v)} ms`;
  if (unit === 'ratio') return `${num(100 * v)}%`;
  if (unit === 'per_s') return `${num(v)}/s`;
  return Math.round(v).toLocaleString('en-US');
}

function diffText(r: ValidationRow): string {
  if (r.diff === null) return 'missing';
  if (!Number.isFinite(r.diff)) return 'live 0';
  if (!r.relative) return `${r.diff >= 0 ? '+' : ''}${num(100 * r.diff)} pt`;
  return `${r.diff >= 0 ? '+' : ''}${num(100 * r.diff)}%`;
}

const toleranceText = (r: ValidationRow) => (r.relative ? `±${num(100 * r.tolerance)}%` : `±${num(100 * r.tolerance)} pt`);

function headline(v: ValidationDocument): string[] {
  return [
    `${v.scenario}: live against simulated, seed ${v.seed}, scale ${v.scale}, speed ${v.speed}${Object.keys(v.env).length ? `, ${Object.entries(v.env).map(([k, x]) => `-e ${k}=${x}`).join(' ')}` : ''}`,
    `machine: ${v.machine}`,
    `calibration: ${v.calibration.file} (${v.calibration.how}; measured on ${v.calibration.machine} at ${v.calibration.commit})`,
    `verdict: ${v.verdict.toUpperCase()} — ${v.passed} of ${v.rows.length} figures within tolerance, ${v.failed} outside`,
    `live harness: event-loop delay p99 ${v.liveHarness.loadGeneratorP99Ms ?? '–'} ms in the load generator, ${v.liveHarness.serverP99Ms ?? '–'} ms in the server thread (saturated from ${HARNESS_LOOP_P99_MS} ms)`,
    ...(v.idleServers.length ? [`${v.idleServers.length} database server${v.idleServers.length === 1 ? '' : 's'} idle in both runs, not listed: ${v.idleServers.join(', ')}`] : []),
    ...v.liveInvalid.map((r) => `warning: ${r}`),
  ];
}

export function validationMarkdown(v: ValidationDocument): string {
  const lines = [`# Validation: ${v.scenario}`, '', ...headline(v).map((l) => `- ${l}`), '', '| figure | live | simulated | difference | tolerance | |', '| --- | ---: | ---: | ---: | ---: | --- |'];
  for (const r of v.rows) lines.push(`| ${r.figure} | ${value(r.live, r.unit)} | ${value(r.simulated, r.unit)} | ${diffText(r)} | ${toleranceText(r)} | ${r.pass ? 'pass' : '**fail**'} |`);
  lines.push('', `Live run: ${v.liveDir}  `, `Simulated run: ${v.simulatedDir}`, '');
  return lines.join('\n');
}

export function validationHtml(v: ValidationDocument): string {
  const head = headline(v);
  const rows = v.rows
    .map((r) => `<tr><td>${esc(r.figure)}</td><td class="r">${esc(value(r.live, r.unit))}</td><td class="r">${esc(value(r.simulated, r.unit))}</td><td class="r">${esc(diffText(r))}</td><td class="r">${esc(toleranceText(r))}</td><td class="${r.pass ? 'ok' : 'bad'}">${r.pass ? 'pass' : 'fail'}</td></tr>`)
    .join('\n');
  const header = `<header><h1>Validation: ${esc(v.scenario)}</h1><div class="verdict${v.verdict === 'passed' ? ' ok' : ''}">${esc(head[3]!)}</div></header>`;
  const body = `<section><ul>${head.filter((_, i) => i !== 3).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
<table><thead><tr><th>figure</th><th class="r">live</th><th class="r">simulated</th><th class="r">difference</th><th class="r">tolerance</th><th></th></tr></thead><tbody>
${rows}
</tbody></table>
<p>Live run: ${esc(v.liveDir)}<br>Simulated run: ${esc(v.simulatedDir)}</p></section>`;
  return page(`Validation: ${v.scenario}`, header, body);
}

/** The three files, as name → content: the CLI only writes them. */
export function validationFiles(v: ValidationDocument): Record<string, string> {
  return { 'validate.json': JSON.stringify(v, null, 2) + '\n', 'validate.md': validationMarkdown(v), 'validate.html': validationHtml(v) };
}
