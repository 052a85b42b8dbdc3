// `scalegram sweep <scenario> --vary path=v1,v2 …`: capacity planning. Runs one scenario, with one
// seed, on every topology of a grid (the base topology with dotted-path overrides), each point in its
// own `scalegram run` child process, one at a time; then writes the side-by-side report
// (reports/sweep.ts): which topology meets every threshold, at what peak utilisation.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { isSimError, simError } from '../sim/engine/errors.ts';
import { DEFAULT_PRESET, loadTopology, PRESETS, resolveTopology, TopologySchema, type TopologyConfig, type TopologyInput } from '../sim/topology-config.ts';
import { virtualTimeOfDay } from '../reports/findings.ts';
import { harnessOf, labelOf, pointValidity, rerunCommand, sweepReport, type PointResult, type PointStatus, type PointSummary, type SweepDimension, type SweepInput, type SweepPointInput, type VaryValue } from '../reports/sweep.ts';
import { envOption, parse, positiveNumber, scenarioFile, seedOption } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';
import { scriptErrorText } from '../scenarios/runner/script-error.ts';

const HELP = `Usage: scalegram sweep <scenario.ts> --vary PATH=V1,V2[,…] [--vary …] [options]

Capacity planning: runs the scenario once per topology of a grid — the cartesian product of the
--vary values, applied to the base topology — with the same seed for every point, one run at a
time, each as its own "scalegram run" process. Then writes a report comparing the runs side by
side: which topology meets every threshold, and at what peak utilisation.

  scalegram sweep scenarios/cache-node-loss.ts --vary cache.nodes=3,6,12 --vary shards.physical=4,8,12 \\
      --seed 3 --speed 400 --scale 0.01 -e READ_RATE=100

Options:
  --vary PATH=V1,V2,…      a topology field (dotted path, e.g. cache.nodes, shards.physical,
                           database.poolSize, cache.hashing, cache.leases) and the values it takes;
                           repeatable: the grid is every combination (at most 256 points). Values
                           are typed by the topology schema (numbers, true/false, names).
  --topology T             base topology: a preset (${Object.keys(PRESETS).join(', ')}) or a JSON
                           file (default: the scenario's exported topology, else ${DEFAULT_PRESET})
  --seed N                 seed for every point (default: random, printed)
  --speed N                time compression, passed to each run (default 1)
  --scale F                population and rate factor, passed to each run (default 1)
  -e, --env KEY=VALUE      set __ENV.KEY in every run (repeatable)
  --out DIR                the sweep directory (default reports/out/sweep-<scenario>-<timestamp>/);
                           it must be new or empty
  --simulate               each point is "scalegram simulate" (full scale in virtual time) instead of "scalegram run"
  --dry-run                print the grid, each point's topology file and run command; run and write nothing
  -h, --help               show this help

The sweep directory holds:
  topologies/<point>.json  each point's full topology (rerun one: scalegram run <scenario> --topology <file> …)
  <point>/                 each run's result directory (result.json, summary.json) and its output (run.log)
  sweep.json               one row per point: the varied values, thresholds passed or failed (which),
                           http p95 overall and per route, req/s, error rate, cache hit ratio (min,
                           median), shard and server skew, fan-out lag p99, replica lag max, stale
                           reads, the peak utilisation of the busiest server and cache node, and
                           (--simulate) the first resource that saturated and when
  sweep.md, sweep.html     the report: a grid of verdicts for two varied fields (a table for one, a
                           flat table for three or more), key figures, per-route p95, thresholds,
                           utilisation; the cheapest point that met every threshold is highlighted
                           (cheapest: in the order of the varied values — the first --vary decides,
                           then the next; numbers ascending, false before true, names as given);
                           a simulated point where a resource saturated is flagged, never the cheapest;
                           so is a point whose run is not valid for conclusions (half or more of its
                           iterations dropped, or a route failing for most of its requests), and
                           a live point whose harness saturated (event loop ≥ 100 ms late at p99)

A point whose thresholds fail (run exit 99) is a result; a run that exits otherwise is recorded as
crashed, with the end of its stderr, and the sweep goes on. Ctrl-C stops the point under way and
writes the report of the finished ones. The report is rewritten after every point.

Exit codes: 0 some point held (thresholds met, no iteration threw, nothing saturated, a valid run, a harness that kept up), 1 none did,
2 bad usage, 104 invalid topology or --vary field/value, 105 interrupted, 107 the scenario failed to load.
`;

/** Points a sweep may have: each is a full run, so a typo in a value list must not start days of work. */
export const MAX_POINTS = 256;

/** Lines of a crashed run's stderr kept in the report. */
const STDERR_TAIL_LINES = 20;

const BIN = fileURLToPath(new URL('../bin/scalegram.mjs', import.meta.url));

// ------------------------------------------------------------------------------- the grid

export interface RawDimension {
  path: string;
  values: string[];
}

/** `--vary path=v1,v2` → the path and its value texts; bad syntax is a usage error (exit 2). */
export function parseVary(specs: readonly string[]): RawDimension[] {
  if (specs.length === 0) throw new UsageError('give at least one --vary PATH=V1,V2 (see --help)');
  const dims: RawDimension[] = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq < 0) throw new UsageError(`--vary expects PATH=V1,V2,… (got "${spec}")`);
    const path = spec.slice(0, eq).trim();
    if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/.test(path)) throw new UsageError(`--vary "${spec}": "${path}" is not a dotted field path like cache.nodes`);
    const values = spec.slice(eq + 1).split(',').map((v) => v.trim());
    if (values.some((v) => v === '')) throw new UsageError(`--vary "${spec}": empty value in the list (write PATH=V1,V2,…)`);
    if (dims.some((d) => d.path === path)) throw new UsageError(`--vary ${path} is given twice; list all its values in one --vary`);
    dims.push({ path, values });
  }
  const points = dims.reduce((n, d) => n * d.values.length, 1);
  if (points > MAX_POINTS) throw new UsageError(`the grid has ${points} points (${dims.map((d) => d.values.length).join(' × ')}); a sweep runs at most ${MAX_POINTS}`);
  return dims;
}

interface LeafSchema {
  type?: string;
  anyOf?: Array<{ const?: unknown }>;
}

/** The schema of a topology field by dotted path, or SG_ERR_CONFIG_INVALID naming the field (exit 104). */
export function fieldSchema(path: string): LeafSchema {
  let schema: TSchema = TopologySchema;
  const segs = path.split('.');
  for (let i = 0; i < segs.length; i++) {
    const props = (schema as { properties?: Record<string, TSchema> }).properties;
    const seg = segs[i]!;
    const next = props && Object.hasOwn(props, seg) ? props[seg] : undefined;
    if (!next) {
      const at = segs.slice(0, i).join('.');
      const known = props ? Object.keys(props).join(', ') : '';
      throw simError('SG_ERR_CONFIG_INVALID', `invalid topology config: ${path}: no such field${known ? ` (${at ? `fields of ${at}` : 'top-level fields'}: ${known})` : ` (${at} is a value, not a section)`}`, { field: path });
    }
    schema = next;
  }
  if ((schema as { type?: string }).type === 'object') {
    const keys = Object.keys((schema as { properties?: Record<string, unknown> }).properties ?? {});
    throw simError('SG_ERR_CONFIG_INVALID', `invalid topology config: ${path}: is a section, not a field (vary one of ${keys.map((k) => `${path}.${k}`).join(', ')})`, { field: path });
  }
  return schema as LeafSchema;
}

const NUMBER = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/** A value text as the field's type: numbers, true/false, or one of the field's names (exit 104 if it cannot be). */
export function typedValue(path: string, schema: LeafSchema, text: string): VaryValue {
  const bad = (expected: string) => simError('SG_ERR_CONFIG_INVALID', `invalid topology config: ${path}: expected ${expected} (got ${JSON.stringify(text)})`, { field: path });
  if (schema.anyOf) {
    const names = schema.anyOf.map((s) => s.const).filter((c): c is string => typeof c === 'string');
    if (!names.includes(text)) throw bad(`one of ${names.join(', ')}`);
    return text;
  }
  switch (schema.type) {
    case 'integer':
    case 'number':
      if (!NUMBER.test(text)) throw bad(schema.type === 'integer' ? 'a whole number' : 'a number');
      return Number(text);
    case 'boolean':
      if (text !== 'true' && text !== 'false') throw bad('true or false');
      return text === 'true';
    default:
      return text;
  }
}

/** Raw dimensions checked against the topology schema and typed. */
export function typeDimensions(raw: readonly RawDimension[]): SweepDimension[] {
  return raw.map((d) => {
    if (d.path === 'name' || d.path === 'description') throw new UsageError(`--vary ${d.path}: the sweep names each point's topology itself; vary a setting instead`);
    const schema = fieldSchema(d.path);
    const values = d.values.map((v) => typedValue(d.path, schema, v));
    const seen = new Set<VaryValue>();
    for (const v of values) {
      if (seen.has(v)) throw new UsageError(`--vary ${d.path}: the value ${String(v)} is listed twice`);
      seen.add(v);
    }
    return { path: d.path, values };
  });
}

export interface GridPoint {
  /** 1-based, in run order. */
  index: number;
  /** Directory name, e.g. `2_cache.nodes=3_shards.physical=8`. */
  name: string;
  values: Record<string, VaryValue>;
  label: string;
}

/** The cartesian product, the first --vary outermost (its values change slowest). */
export function expandGrid(dims: readonly SweepDimension[]): GridPoint[] {
  let combos: Array<Record<string, VaryValue>> = [{}];
  for (const d of dims) combos = combos.flatMap((c) => d.values.map((v) => ({ ...c, [d.path]: v })));
  const width = String(combos.length).length;
  return combos.map((values, i) => {
    const slug = Object.entries(values)
      .map(([k, v]) => `${k}=${String(v).replace(/[^A-Za-z0-9._-]/g, '-')}`)
      .join('_');
    return { index: i + 1, name: `${String(i + 1).padStart(width, '0')}_${slug}`, values, label: labelOf(values) };
  });
}

/** The point's topology: the base with its values set, validated (SG_ERR_CONFIG_INVALID names the field). */
export function pointTopology(base: TopologyConfig, point: Pick<GridPoint, 'values' | 'label'>): TopologyConfig {
  const doc = structuredClone(base) as unknown as Record<string, unknown>;
  for (const [path, value] of Object.entries(point.values)) {
    const segs = path.split('.');
    let obj = doc;
    for (const seg of segs.slice(0, -1)) obj = obj[seg] as Record<string, unknown>;
    obj[segs[segs.length - 1]!] = value;
  }
  doc.name = `${base.name} ${point.label}`.slice(0, 100);
  doc.description = `${base.name} with ${point.label} (scalegram sweep)`;
  try {
    return resolveTopology(doc);
  } catch (e) {
    if (isSimError(e, 'SG_ERR_CONFIG_INVALID')) throw simError('SG_ERR_CONFIG_INVALID', `${e.message}, in the point ${point.label}`, e.details);
    throw e;
  }
}

/** The config with its keys in the schema's order (name, description, shards, database, …), for a readable file. */
export function inSchemaOrder(value: unknown, schema: TSchema = TopologySchema): unknown {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!props || value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(props)) if (Object.hasOwn(obj, k)) out[k] = inSchemaOrder(obj[k], s);
  for (const k of Object.keys(obj)) if (!Object.hasOwn(out, k)) out[k] = obj[k];
  return out;
}

// ------------------------------------------------------------------------ the base topology

/** Thrown when the scenario cannot be loaded to read its `topology` export (exit 107, as run). */
class ScriptLoadError extends Error {}

/**
 * The scenario's exported `topology`, read as `scalegram run` reads it: the module is loaded with
 * __ENV holding what each run will see (SPEED, SCALE, SEED, -e), since exports may depend on it.
 */
async function scriptTopology(scriptPath: string, env: Record<string, string>): Promise<{ config: TopologyConfig; source: string }> {
  const { registerK6Modules, installGlobals } = await import('../scenarios/runner/k6/register.ts');
  registerK6Modules();
  installGlobals();
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(env)) {
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  let mod: { topology?: unknown };
  try {
    mod = (await import(pathToFileURL(scriptPath).href)) as { topology?: unknown };
  } catch (e) {
    throw new ScriptLoadError(`the scenario failed to load: ${scriptErrorText(e, scriptPath)}`);
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const value = mod.topology;
  // As scenarios/runner/run.ts: a preset name, or an object with `extends` and overrides.
  if (value === undefined) return { config: loadTopology(DEFAULT_PRESET), source: 'the default preset' };
  if (typeof value === 'string') return { config: loadTopology(value), source: 'exported by the scenario' };
  if (value && typeof value === 'object') {
    const { extends: parent, ...rest } = value as { extends?: string };
    return { config: loadTopology(parent ?? DEFAULT_PRESET, rest as TopologyInput), source: 'exported by the scenario' };
  }
  throw simError('SG_ERR_CONFIG_INVALID', 'the exported `topology` must be a preset name or an object');
}

// ------------------------------------------------------------------------------- one point

interface PointRun {
  status: PointStatus;
  exitCode: number | null;
  wallMs: number;
  error: string | null;
  result: PointResult | null;
  summary: PointSummary | null;
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** A finished run's documents, or why they cannot be read. */
export function loadPointResult(dir: string): { result: PointResult; summary: PointSummary | null } | { error: string } {
  const file = join(dir, 'result.json');
  if (!existsSync(file)) return { error: `the run wrote no ${file}` };
  let doc: unknown;
  try {
    doc = readJson(file);
  } catch (e) {
    return { error: `${file} is not readable JSON: ${(e as Error).message}` };
  }
  const d = doc as Record<string, unknown> | null;
  if (!d || d.format !== 'scalegram-result/1' || !Array.isArray(d.thresholds) || typeof (d.series as { series?: unknown })?.series !== 'object') {
    return { error: `${file} is not a scalegram-result/1 document` };
  }
  let summary: PointSummary | null;
  try {
    summary = readJson(join(dir, 'summary.json')) as PointSummary;
  } catch {
    // The figures that come from it show as not measured; the thresholds are in result.json.
    summary = null;
  }
  return { result: doc as PointResult, summary };
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * What a crashed run said: from its last message line (`scalegram run: …`, else the last line that
 * is not a stack frame) to the end, at most STDERR_TAIL_LINES lines; and that message line alone.
 */
export function crashReport(stderr: string): { text: string; line: string } {
  const lines = stderr.trimEnd().split('\n');
  let at = -1;
  for (let i = lines.length - 1; i >= 0 && at < 0; i--) if (lines[i]!.startsWith('scalegram run:')) at = i;
  for (let i = lines.length - 1; i >= 0 && at < 0; i--) if (lines[i]!.trim() !== '' && !/^\s/.test(lines[i]!)) at = i;
  if (at < 0) return { text: tail(stderr, STDERR_TAIL_LINES), line: '' };
  return { text: lines.slice(at, at + STDERR_TAIL_LINES).join('\n'), line: lines[at]!.replace(/^scalegram run: /, '') };
}

/** Runs one point as `scalegram run` in a child process; `onChild` lets Ctrl-C reach it. */
function runPoint(command: 'run' | 'simulate', args: string[], outDir: string, onChild: (c: ChildProcess | null) => void): Promise<{ exitCode: number | null; signal: string | null; stderr: string; wallMs: number }> {
  return new Promise((resolvePoint) => {
    const t0 = performance.now();
    const log = createWriteStream(join(outDir, 'run.log'));
    // Its own process group: Ctrl-C reaches the sweep, which passes one SIGINT on (a second one
    // would make the run exit before writing its result).
    const child = spawn(process.execPath, [BIN, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    onChild(child);
    let stderr = '';
    child.stdout.pipe(log, { end: false });
    child.stderr.on('data', (b: Buffer) => {
      log.write(b);
      stderr = (stderr + b.toString('utf8')).slice(-16_384);
    });
    const done = (exitCode: number | null, signal: string | null) => {
      onChild(null);
      log.end(() => resolvePoint({ exitCode, signal, stderr, wallMs: performance.now() - t0 }));
    };
    child.once('error', (e) => {
      stderr += `\ncould not start the run: ${e.message}`;
      done(null, null);
    });
    child.once('close', (code, signal) => done(code, signal));
  });
}

// ------------------------------------------------------------------------------ the command

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

export async function sweepCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      vary: { type: 'string', multiple: true },
      topology: { type: 'string' },
      seed: { type: 'string' },
      speed: { type: 'string' },
      scale: { type: 'string' },
      env: { type: 'string', short: 'e', multiple: true },
      out: { type: 'string' },
      'dry-run': { type: 'boolean' },
      simulate: { type: 'boolean' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const script = positionals[0]!;
  const scriptPath = scenarioFile(positionals);
  const rawDims = parseVary(values.vary ?? []);
  const speed = positiveNumber(values.speed, 'speed', 1);
  const scale = positiveNumber(values.scale, 'scale', 1);
  const env = envOption(values.env ?? []);
  const seed = seedOption(values.seed);
  if (values.out !== undefined && values.out.trim() === '') throw new UsageError('--out must not be empty');
  const dryRun = values['dry-run'] === true;
  const simulate = values.simulate === true;
  if (simulate && values.speed !== undefined) throw new UsageError('--speed has no meaning with --simulate (virtual time runs as fast as it can)');

  // Everything is checked before the first run: fields and values, the base, every point's topology.
  const dimensions = typeDimensions(rawDims);
  let base: { config: TopologyConfig; source: string };
  if (values.topology) {
    base = { config: loadTopology(values.topology), source: `--topology ${values.topology}` };
  } else {
    try {
      base = await scriptTopology(scriptPath, { ...env, SPEED: String(speed), SCALE: String(scale), SEED: String(seed), SCALEGRAM_RUNNER: '1' });
    } catch (e) {
      if (e instanceof ScriptLoadError) {
        process.stderr.write(`scalegram sweep: ${e.message}\n`);
        return EXIT.SCRIPT_ERROR;
      }
      throw e;
    }
  }
  const grid = expandGrid(dimensions).map((p) => ({ ...p, topology: pointTopology(base.config, p) }));

  const scenario = basename(scriptPath).replace(/\.(ts|js|mjs)$/, ''); // as run names its result
  const outDir = values.out ?? join('reports', 'out', `sweep-${scenario}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const outAbs = resolve(outDir);
  const topologyFile = (name: string) => join('topologies', `${name}.json`);
  const plan = { script, outDir, seed, speed, scale, env, ...(simulate ? { mode: 'simulate' as const } : {}) };
  const header = `scalegram sweep: ${script} on ${base.config.name} (${base.source}); seed ${seed}, ${simulate ? 'simulated' : `speed ${speed}`}, scale ${scale}${Object.keys(env).length ? `, ${Object.entries(env).map(([k, v]) => `-e ${k}=${v}`).join(' ')}` : ''}\n` +
    `grid: ${dimensions.map((d) => `${d.path} = ${d.values.map(String).join(', ')}`).join(' × ')} → ${grid.length} point${grid.length === 1 ? '' : 's'}\n`;

  if (dryRun) {
    process.stdout.write(header + `dry run: nothing is run or written; the sweep would write ${outDir}/\n\n`);
    for (const p of grid) {
      process.stdout.write(`[${p.index}/${grid.length}] ${p.label}\n  topology file: ${join(outDir, topologyFile(p.name))}\n  run: ${rerunCommand(plan, topologyFile(p.name))} --out ${join(outDir, p.name)} --quiet\n${JSON.stringify(inSchemaOrder(p.topology), null, 2).replace(/^/gm, '  ')}\n\n`);
    }
    return EXIT.OK;
  }

  if (existsSync(outAbs) && !statSync(outAbs).isDirectory()) throw new UsageError(`--out ${outDir} is a file, not a directory`);
  if (existsSync(outAbs) && readdirSync(outAbs).length > 0) throw new UsageError(`--out ${outDir} already holds files (a previous sweep?); give a new or empty directory`);
  mkdirSync(join(outAbs, 'topologies'), { recursive: true });
  for (const p of grid) writeFileSync(join(outAbs, topologyFile(p.name)), JSON.stringify(inSchemaOrder(p.topology), null, 2) + '\n');
  process.stderr.write(header + `writing ${outDir}/\n`);

  const startedAt = new Date().toISOString();
  const runs = new Map<number, PointRun>();
  const input = (): SweepInput => ({
    scenario,
    script,
    outDir,
    base: { name: base.config.name, source: base.source },
    seed,
    speed,
    scale,
    env,
    ...(simulate ? { mode: 'simulate' as const } : {}),
    startedAt,
    dimensions,
    points: grid.map((p): SweepPointInput => {
      const r = runs.get(p.index);
      return { name: p.name, values: p.values, topologyFile: topologyFile(p.name), status: r?.status ?? 'not-run', exitCode: r?.exitCode ?? null, wallMs: r?.wallMs ?? null, error: r?.error ?? null, result: r?.result ?? null, summary: r?.summary ?? null };
    }),
  });
  const writeReport = () => {
    const report = sweepReport(input());
    writeFileSync(join(outAbs, 'sweep.json'), JSON.stringify(report.document, null, 2) + '\n');
    writeFileSync(join(outAbs, 'sweep.md'), report.markdown);
    writeFileSync(join(outAbs, 'sweep.html'), report.html);
    return report;
  };

  let interrupted = false;
  let child: ChildProcess | null = null;
  const onSignal = () => {
    if (interrupted) {
      // A second Ctrl-C: stop the run now, without its result.
      child?.kill('SIGKILL');
      return;
    }
    interrupted = true;
    process.stderr.write('\nscalegram sweep: interrupted; stopping the point under way (Ctrl-C again to kill it) and writing the report of the finished points\n');
    child?.kill('SIGINT');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (const p of grid) {
      if (interrupted) break;
      const pointDir = join(outAbs, p.name);
      mkdirSync(pointDir, { recursive: true });
      process.stderr.write(`[${p.index}/${grid.length}] ${p.label} … `);
      const args = [scriptPath, '--topology', join(outAbs, topologyFile(p.name)), '--seed', String(seed), ...(simulate ? [] : ['--speed', String(speed)]), '--scale', String(scale), '--out', pointDir, '--quiet', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`])];
      const r = await runPoint(simulate ? 'simulate' : 'run', args, pointDir, (c) => (child = c));
      let run: PointRun;
      if (interrupted) {
        run = { status: 'interrupted', exitCode: r.exitCode, wallMs: r.wallMs, error: tail(r.stderr, STDERR_TAIL_LINES) || null, result: null, summary: null };
        process.stderr.write(`interrupted after ${seconds(r.wallMs)}\n`);
      } else if (r.exitCode === EXIT.OK || r.exitCode === EXIT.THRESHOLDS) {
        const read = loadPointResult(pointDir);
        if ('error' in read) {
          run = { status: 'crashed', exitCode: r.exitCode, wallMs: r.wallMs, error: `${read.error}\n${tail(r.stderr, STDERR_TAIL_LINES)}`.trim(), result: null, summary: null };
          process.stderr.write(`crashed in ${seconds(r.wallMs)}: ${read.error}\n`);
        } else {
          const failed = read.result.thresholds.filter((t) => !t.ok).map((t) => `${t.metric} ${t.expression}`);
          // The exit code is the run's verdict; the threshold list says which.
          const passed = r.exitCode === EXIT.OK;
          run = { status: passed ? 'passed' : 'failed', exitCode: r.exitCode, wallMs: r.wallMs, error: null, ...read };
          const threw = read.result.iterations.errors ?? 0;
          const sat = read.result.simulation?.saturation?.[0];
          const validity = pointValidity(read.result, read.summary);
          const harness = harnessOf(read.result);
          const verdict =
            (read.result.thresholds.length === 0 ? 'no thresholds' : passed ? 'thresholds ✓' : `thresholds ✗ (${failed.join('; ') || 'failed'})`) +
            (threw > 0 ? `, ⚠ ${threw} iteration${threw === 1 ? '' : 's'} threw (${read.result.iterations.errorMessages?.[0]?.message.slice(0, 120) ?? ''}): not comparable` : '') +
            (sat ? `, ⚠ ${sat.resource} saturated at ${virtualTimeOfDay(sat.atMs)} of virtual time` : '') +
            (validity.valid ? '' : `, ⚠ not valid for conclusions (${validity.reasons.join('; ')})`) +
            (harness ? `, ⚠ harness saturated (event loop ${Math.round(harness.p99Ms)} ms late at p99): its latencies describe this machine` : '');
          process.stderr.write(`done in ${seconds(r.wallMs)}, ${verdict}\n`);
        }
      } else {
        const why = r.exitCode === null ? `killed by ${r.signal ?? 'a signal'}` : `exit ${r.exitCode}`;
        const crash = crashReport(r.stderr);
        run = { status: 'crashed', exitCode: r.exitCode, wallMs: r.wallMs, error: crash.text || why, result: null, summary: null };
        process.stderr.write(`crashed in ${seconds(r.wallMs)} (${why})${crash.line ? `: ${crash.line.slice(0, 200)}` : ''}\n`);
      }
      runs.set(p.index, run);
      writeReport();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const report = writeReport();
  process.stdout.write(`\n${report.text}\nreport: ${join(outDir, 'sweep.html')} (also sweep.md, sweep.json)\n`);
  if (interrupted) return EXIT.INTERRUPTED;
  return report.document.cheapest ? EXIT.OK : EXIT.FAILED;
}
