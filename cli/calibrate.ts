// `scalegram calibrate`: measures what the live service costs on this machine and writes a
// calibration profile (sim/calibration.ts) that `scalegram simulate --calibration` models instead
// of Instagram's 2012 hardware. Three measurements: the parts' costs timed directly (bench/parts.ts);
// scenarios/calibrate.ts driven through the live stack as `scalegram run` serves it, one request at
// a time, each route's requests split by outcome (cache hit or miss; reads on a replica, the
// primary, or none) by the server's work meter; and scenarios/calibrate-idle.ts, the wake-up of a
// request that finds the server idle. Each route's app CPU is fitted per outcome as its server-side
// median less the cost of the work the topology counted for it at the parts' measured costs.

import { accessSync, constants, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureParts, type PartCost } from '../bench/parts.ts';
import { formatValue } from '../scenarios/runner/format.ts';
import { keyFigures, seriesPercentiles, type RouteRow } from '../scenarios/runner/key-figures.ts';
import { resultDocument, type ResultDocument } from '../scenarios/runner/results.ts';
import { RunError, RunHandle } from '../scenarios/runner/run.ts';
import { CALIBRATION_FORMAT, parseCalibration, type Calibration, type Costs } from '../sim/calibration.ts';
import { LIVE_ROUTE_OF, OPS, type OpName } from '../sim/model/plan.ts';
import type { Outcome, WorkSnapshot, WorkTotals } from '../sim/observability/work-meter.ts';
import { DEFAULT_PRESET, loadTopology, PRESETS, type TopologyConfig } from '../sim/topology-config.ts';
import { intOption, parse, seedOption } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';
import { chooseRealStack } from './real-stack.ts';
import type { RealStack } from '../sim/backends/probe.ts';
import { commitIdentity, machineIdentity } from './host.ts';

export const CALIBRATION_SCRIPT = fileURLToPath(new URL('../scenarios/calibrate.ts', import.meta.url));
export const IDLE_SCRIPT = fileURLToPath(new URL('../scenarios/calibrate-idle.ts', import.meta.url));
/** The two idle times of the wake-up measurement (seconds, given to scenarios/calibrate-idle.ts): short, and long enough for the whole wake-up. */
export const IDLE_S = { short: 0.005, long: 0.05 } as const;
/** Where a profile of this machine is written, and where `validate` looks for one: the repository's calibration/this-machine.json. */
export const DEFAULT_PROFILE = fileURLToPath(new URL('../calibration/this-machine.json', import.meta.url));
/** The seed of the calibration workload unless --seed says otherwise: a fixed workload by default. */
export const DEFAULT_CALIBRATION_SEED = 1;

const HELP = `Usage: scalegram calibrate [options]

Measures what the live photo service costs on this machine and writes a calibration profile that
"scalegram simulate --calibration FILE" uses instead of Instagram's 2012 hardware:
  1. the parts, timed directly on a topology built as "scalegram run" builds it (before and after
     step 2; the lower of the two medians counts): primary-key and range queries and writes
     through the database cluster, memcached gets, multigets and sets, feed-store Redis commands,
     a fan-out chunk's deliveries (redisPushUs), an empty job, the image resize, the blob puts,
     the password hash;
  2. every route, driven through the live stack (the server in its own thread, as "scalegram run"
     serves it) one request at a time by scenarios/calibrate.ts, its requests split by outcome
     (cache hit or miss; reads on a replica, the primary, or none); each route's app CPU (cpuMs) is
     its HTTP share plus its commonest all-hit outcome's server-side median less the cost of its
     counted work; missCpuMs the app CPU per missed key; cpuSpread its app CPU's p99 ÷ median;
  3. the wake-up: warm feed reads back to back, after a short and after a long idle, and pairs
     after a long idle (scenarios/calibrate-idle.ts): wakeMs, wakeTauMs and wakeShare.
The profile records the machine (CPU, cores, Node, host name) and the commit it was measured on,
each route's p50, p99 and work per request, per outcome, and every part's timing. Takes about a
minute.

Options:
  --topology T       preset (${Object.keys(PRESETS).join(', ')}) or JSON file the live
                     stack is built from (default ${DEFAULT_PRESET})
  --out FILE         where to write the profile (default: the repository's calibration/this-machine.json,
                     which "scalegram validate" uses when it was measured on the machine validate runs on)
  --seed N           seed of the workload, population and parts (default ${DEFAULT_CALIBRATION_SEED}: the same workload every time)
  --iterations N     iterations of the workload, one request of each route each (default 300)
  --part-samples N   timed samples of each cheap part; the resize and the hash take a tenth (default 500)
  --idle-seconds N   seconds of each phase of the wake-up measurement (the long idle's is twice it; default 3)
  --stack S          embedded (default) or real: measure on the real parts, as "scalegram run --stack real"
                     builds them (a stack from "scalegram stack up" if one is up, its topology unless
                     --topology; else memcached processes of its own, $REDIS_URL and $AMQP_URL), the
                     store on its Postgres servers (else $POSTGRES_SERVERS, else embedded). Exit 69
                     when one does not answer
  --stack-dir DIR    with --stack real: the stack "scalegram stack up" started in DIR
  -q, --quiet        no progress lines
  -h, --help         show this help

Exit codes: 0 written, 1 the live workload failed (a route answered mostly errors), 2 bad usage,
69 a real part did not answer (--stack real), 104 invalid topology.
`;

/** The simulator's ops that a route of the calibration workload stands for (admin has none). */
export const CALIBRATED_OPS = OPS.filter((o): o is Exclude<OpName, 'admin'> => o !== 'admin');

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** Part timings (µs) → the capacity costs the simulator charges. */
export function costsFromParts(parts: Record<string, PartCost>, cpuMs: Costs['cpuMs']): Costs {
  const us = (k: string) => {
    const p = parts[k];
    if (!p) throw new Error(`calibrate: no measurement of ${k}`);
    return p.p50Us;
  };
  const keyUs = Math.max(0, (us('cache.getMany20') - us('cache.get')) / 19);
  return {
    cpuMs,
    passwordHashMs: round3(us('password.hash') / 1000),
    queryMs: { pkRead: round3(us('queryMs.pkRead') / 1000), rangeRead: round3(us('queryMs.rangeRead') / 1000), write: round3(us('queryMs.write') / 1000) },
    memcachedOpUs: round3(Math.max(0, us('cache.get') - keyUs)),
    memcachedKeyUs: round3(keyUs),
    redisOpUs: round3(us('redis.lrange')),
    redisPushUs: round3(us('redis.push1000') / 1000),
    jobOverheadMs: round3(us('job.empty') / 1000),
    resizeMs: round3(us('image.resize') / 1000),
    blobPutMs: round3(us('blob.put3') / 1000),
  };
}

/**
 * The cost (ms) of one request's counted work at the measured costs, as the live server does it:
 * in one thread, one part after another. Lookups are costed per key plus one request per node they
 * can reach; a user's media page reads one page by range; an upload waits for its resize and puts.
 */
export function workCostMs(op: Exclude<OpName, 'admin'>, w: Record<string, number>, c: Omit<Costs, 'cpuMs'>, setUs: number, cacheNodes: number): number {
  const n = (k: string) => w[k] ?? 0;
  const lookups = n('cacheLookups');
  const us = lookups * c.memcachedKeyUs + Math.min(lookups, cacheNodes) * c.memcachedOpUs + (n('cacheSets') + n('cacheDeletes')) * setUs + n('redisCommands') * c.redisOpUs;
  let ms = n('dbWrites') * c.queryMs.write + n('jobsQueued') * c.jobOverheadMs;
  const reads = n('dbReads');
  if (op === 'user_media' && reads >= 1) ms += c.queryMs.rangeRead + (reads - 1) * c.queryMs.pkRead;
  else ms += reads * c.queryMs.pkRead;
  if (op === 'upload') ms += c.resizeMs + c.blobPutMs;
  if (op === 'signup') ms += c.passwordHashMs;
  return ms + us / 1000;
}

/** The median of http_req_duration over the requests of one k6 scenario of a result (its `scenario`-tagged series), or of one request name (`name`). */
export function scenarioMedian(doc: ResultDocument, scenario: string, tag: 'scenario' | 'name' = 'scenario'): number {
  const s = doc.series.series.find((x) => x.metric === 'http_req_duration' && x.tags[tag] === scenario && Object.keys(x.tags).length === 1);
  if (!s?.hdr) throw new RunError(`calibrate: no request of the ${scenario} ${tag === 'scenario' ? 'phase' : 'read'} was measured`, EXIT.FAILED);
  return seriesPercentiles(s, [50]).values[0]!;
}

/** The wake-up measurement's phases, as the idle before each cycle and the reads sent at once in it. */
export interface WakePhases {
  /** Median excess over back to back (ms) of a read after the short idle, after the long idle, and of a pair after the long idle (first, next). */
  short: number;
  long: number;
  burstFirst: number;
  burstNext: number;
  shortMs: number;
  longMs: number;
}

/**
 * What each read of a phase pays, in its steady state, under the simulator's wake-up (model.ts,
 * beginRequest): idle time builds the debt towards W (D += (W − D) × (1 − e^(−idle ÷ τ))), and each
 * request pays `share` of it. Returns [short, long, burst first, burst next] for W = 1.
 */
export function wakePays(share: number, tauMs: number, shortMs: number, longMs: number): [number, number, number, number] {
  // A cycle: idle, then k reads back to back. The debt left after one, D, is the fixed point of
  // D = (D + (1 − D) g) (1 − share)^k, g = 1 − e^(−idle ÷ τ).
  const cycle = (idleMs: number, k: number) => {
    const g = 1 - Math.exp(-idleMs / tauMs);
    const r = (1 - share) ** k;
    const left = (g * r) / (1 - (1 - g) * r);
    const owed = left + (1 - left) * g;
    return [share * owed, share * owed * (1 - share)] as const;
  };
  const [short] = cycle(shortMs, 1);
  const [long] = cycle(longMs, 1);
  const [first, next] = cycle(longMs, 2);
  return [short, long, first, next];
}

/**
 * The wake-up W, its time constant τ and the share of it each request pays, fitted to the four
 * phases' excesses by least squares (W in closed form for each share and τ; those by a grid, then a
 * pattern search). τ stays at most a third of the long idle, so that the long idle holds at least 95%
 * of the wake-up. No excess after the long idle: no wake-up.
 */
export function fitWakeShare(p: WakePhases): { wakeMs: number; tauMs: number; share: number } {
  if (!(p.long > 0)) return { wakeMs: 0, tauMs: 10, share: 1 };
  const observed = [p.short, p.long, p.burstFirst, p.burstNext];
  const maxTau = p.longMs / 3;
  const score = (share: number, tau: number) => {
    const u = wakePays(share, tau, p.shortMs, p.longMs);
    let uo = 0;
    let uu = 0;
    for (let i = 0; i < 4; i++) {
      uo += u[i]! * observed[i]!;
      uu += u[i]! * u[i]!;
    }
    const w = Math.max(0, uo / uu);
    let err = 0;
    for (let i = 0; i < 4; i++) err += (w * u[i]! - observed[i]!) ** 2;
    return { err, w };
  };
  const clampShare = (s: number) => Math.min(1, Math.max(0.01, s));
  const clampLogTau = (l: number) => Math.min(Math.log(maxTau), Math.max(Math.log(0.01), l));
  let best = { share: 1, logTau: Math.log(maxTau), err: Infinity };
  for (let i = 1; i <= 100; i++) {
    for (let j = 0; j <= 120; j++) {
      const share = i / 100;
      const logTau = Math.log(0.01) + ((Math.log(maxTau) - Math.log(0.01)) * j) / 120;
      const { err } = score(share, Math.exp(logTau));
      if (err < best.err) best = { share, logTau, err };
    }
  }
  for (let step = [0.01, 0.05]; step[0]! > 1e-7; ) {
    let moved = false;
    for (const [ds, dl] of [[step[0]!, 0], [-step[0]!, 0], [0, step[1]!], [0, -step[1]!]] as const) {
      const share = clampShare(best.share + ds);
      const logTau = clampLogTau(best.logTau + dl);
      const { err } = score(share, Math.exp(logTau));
      if (err < best.err) {
        best = { share, logTau, err };
        moved = true;
      }
    }
    if (!moved) step = [step[0]! / 2, step[1]! / 2];
  }
  const tauMs = Math.exp(best.logTau);
  return { wakeMs: score(best.share, tauMs).w, tauMs, share: best.share };
}

/** Outcomes with fewer requests than this are recorded but not fitted. */
export const MIN_OUTCOME_REQUESTS = 20;

export interface OutcomeFit {
  /** Null when no outcome had MIN_OUTCOME_REQUESTS requests: the route is fitted as a whole. */
  cpuMs: number | null;
  missCpuMs: number;
  httpMs: number;
  /** The basis outcome's server-side (p99 − work cost) ÷ its app CPU, at least 1 (1 without a basis). */
  spread: number;
  outcomes: NonNullable<Calibration['routes'][string]['outcomes']>;
}

/**
 * A route's costs per outcome (module comment of sim/observability/work-meter.ts): each outcome's app
 * CPU is its server-side median less its counted work's cost; the route's cpuMs is its HTTP share
 * (client p50 less the server-side median) plus the app CPU of its commonest all-hit outcome, and
 * missCpuMs the commonest miss outcome's extra app CPU per missed key. Null without an outcome
 * split (a server that does not count it).
 */
export function fitOutcomes(
  clientP50Ms: number,
  totals: Partial<Record<Outcome, WorkTotals>>,
  times: Partial<Record<Outcome | 'all', { p50: number; p99: number; samples: number }>>,
  cost: (work: Record<string, number>) => number,
): OutcomeFit | null {
  const all = times.all;
  if (!all || all.samples === 0) return null;
  const outcomes: OutcomeFit['outcomes'] = {};
  const fitted: Array<{ name: Outcome; requests: number; appMs: number; missesPerRequest: number }> = [];
  for (const [name, t] of Object.entries(totals) as Array<[Outcome, WorkTotals]>) {
    const time = times[name];
    if (!time || t.count === 0) continue;
    const w = perRequest(t);
    const modelled = cost(w);
    const appMs = Math.max(0, time.p50 - modelled);
    outcomes[name] = { requests: t.count, serverP50Ms: round3(time.p50), serverP99Ms: round3(time.p99), work: w, modelledWorkMs: round3(modelled), appMs: round3(appMs) };
    if (t.count >= MIN_OUTCOME_REQUESTS) fitted.push({ name, requests: t.count, appMs, missesPerRequest: t.cacheMisses / t.count });
  }
  const httpMs = Math.max(0, clientP50Ms - all.p50);
  if (fitted.length === 0) return { cpuMs: null, missCpuMs: 0, httpMs, spread: 1, outcomes };
  fitted.sort((a, b) => b.requests - a.requests || (a.name < b.name ? -1 : 1));
  const hit = fitted.find((f) => f.name.startsWith('hit/'));
  const miss = fitted.find((f) => f.name.startsWith('miss/'));
  const basis = hit ?? fitted[0]!;
  const missCpuMs = hit && miss && miss.missesPerRequest > 0 ? Math.max(0, (miss.appMs - hit.appMs) / miss.missesPerRequest) : 0;
  const b = outcomes[basis.name]!;
  const spread = b.appMs > 0 ? round3(Math.min(1000, Math.max(1, (b.serverP99Ms - b.modelledWorkMs) / b.appMs))) : 1;
  return { cpuMs: httpMs + basis.appMs, missCpuMs, httpMs, spread, outcomes };
}

/** Per part, the pass with the lower median (its p99 with it). */
export function lowerMedians(a: Record<string, PartCost>, b: Record<string, PartCost>): Record<string, PartCost> {
  const out: Record<string, PartCost> = {};
  for (const k of Object.keys(a)) out[k] = b[k] && b[k].p50Us < a[k]!.p50Us ? b[k] : a[k]!;
  return out;
}

/** Work per request of a route's totals. */
function perRequest(t: WorkTotals | undefined): Record<string, number> {
  if (!t || t.count === 0) return {};
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t)) if (k !== 'count' && k !== 'failed') out[k] = round3(v / t.count);
  return out;
}

export interface CalibrateOptions {
  topology?: string;
  seed: number;
  iterations: number;
  /** Samples of the cheap parts (the resize and the hash take a tenth of it, at least 5). */
  partSamples?: number;
  /** Seconds of each phase of the wake-up measurement (default 3; the long idle's phase is twice it). */
  idleSeconds?: number;
  onProgress?: (line: string) => void;
  /** Real parts to measure on (`--stack real`): the parts' timings and the live stack's server use them. */
  backends?: RealStack;
}

/** Measures and fits; returns the profile (validated) or throws RunError / a config error. */
export async function calibrate(o: CalibrateOptions): Promise<Calibration> {
  const say = o.onProgress ?? (() => {});
  const config: TopologyConfig = o.topology ? loadTopology(o.topology) : loadTopology(DEFAULT_PRESET);
  const cheap = o.partSamples ?? 500;
  const samples = { cheap, costly: Math.max(5, Math.round(cheap / 10)) };
  say(`calibrate: 1/4 timing the parts on a ${config.name} topology (${cheap} samples each)`);
  const before = await measureParts(config, o.seed, samples, (name) => say(`calibrate:   ${name}`), o.backends);
  say(`calibrate: 2/4 driving every route through the live stack, one request at a time (${o.iterations} iterations of scenarios/calibrate.ts, seed ${o.seed})`);
  const handle = new RunHandle({ scriptPath: CALIBRATION_SCRIPT, ...(o.topology ? { topology: o.topology } : {}), ...(o.backends ? { backends: o.backends } : {}), speed: 1, scale: 1, seed: o.seed, env: { ITERATIONS: String(o.iterations) }, noThresholds: true });
  let lastSaid = 0;
  handle.on('tick', (t: { elapsedMs: number; iterations: number }) => {
    if (t.elapsedMs - lastSaid < 5000) return;
    lastSaid = t.elapsedMs;
    say(`calibrate:   ${t.iterations} / ${o.iterations} iterations, ${(t.elapsedMs / 1000).toFixed(0)} s`);
  });
  const result = await handle.run();
  say(`calibrate: 3/4 the wake-up: warm feed reads back to back, after ${IDLE_S.short * 1000} ms and after ${IDLE_S.long * 1000} ms of idle, and pairs after ${IDLE_S.long * 1000} ms (scenarios/calibrate-idle.ts)`);
  const idle = resultDocument(await new RunHandle({ scriptPath: IDLE_SCRIPT, ...(o.topology ? { topology: o.topology } : {}), ...(o.backends ? { backends: o.backends } : {}), speed: 1, scale: 1, seed: o.seed, env: { SHORT_IDLE_S: String(IDLE_S.short), LONG_IDLE_S: String(IDLE_S.long), SECONDS: String(o.idleSeconds ?? 3) }, noThresholds: true }).run());
  const medians = {
    back: scenarioMedian(idle, 'back_to_back'),
    short: scenarioMedian(idle, 'idle_short'),
    long: scenarioMedian(idle, 'idle_long'),
    burstFirst: scenarioMedian(idle, 'feed_first', 'name'),
    burstNext: scenarioMedian(idle, 'feed_next', 'name'),
  };
  const wake = fitWakeShare({ short: medians.short - medians.back, long: medians.long - medians.back, burstFirst: medians.burstFirst - medians.back, burstNext: medians.burstNext - medians.back, shortMs: IDLE_S.short * 1000, longMs: IDLE_S.long * 1000 });
  say(`calibrate: 4/4 timing the parts again; each cost is the lower of the two medians (other load on the machine only ever adds)`);
  const after = await measureParts(config, o.seed, samples, (name) => say(`calibrate:   ${name}`), o.backends);
  const parts = lowerMedians(before, after);
  const doc = resultDocument(result);
  const kf = keyFigures(doc);
  const meter = (doc.telemetry as { work?: WorkSnapshot } | null)?.work;
  const work = meter?.routes ?? {};
  const rows = new Map<string, RouteRow>(kf.routes.map((r) => [r.name, r]));
  const base = costsFromParts(parts, { feed: 0, user_media: 0, media: 0, like: 0, comment: 0, follow: 0, upload: 0, signup: 0 });
  const setUs = parts['cache.set']!.p50Us;
  const cpuMs = { ...base.cpuMs };
  const missCpuMs = { ...base.cpuMs };
  const cpuSpread = { feed: 1, user_media: 1, media: 1, like: 1, comment: 1, follow: 1, upload: 1, signup: 1 };
  const routes: Calibration['routes'] = {};
  const problems: string[] = [];
  const notes: string[] = [];
  for (const op of CALIBRATED_OPS) {
    const row = rows.get(op);
    const live = LIVE_ROUTE_OF[op]!;
    const w = perRequest(work[live]);
    if (!row || row.count === 0) {
      problems.push(`${op}: no request was answered`);
      continue;
    }
    if (row.failed > row.count / 2) problems.push(`${op}: ${row.failed} of ${row.count} requests failed`);
    const modelled = workCostMs(op, w, base, setUs, config.cache.nodes);
    const fit = fitOutcomes(row.p50, meter?.outcomes?.[live] ?? {}, meter?.outcomeServerMs?.[live] ?? {}, (ow) => workCostMs(op, ow, base, setUs, config.cache.nodes));
    // Without the server's outcome split (a server that does not count it), the route as a whole.
    const cpu = fit?.cpuMs ?? Math.max(0, row.p50 - modelled);
    cpuMs[op] = round3(cpu);
    missCpuMs[op] = round3(fit?.missCpuMs ?? 0);
    // The tail, server side: the basis outcome's p99 less its work's cost, over its app CPU (so the
    // HTTP share, the misses — charged apart — and the client are not in it; the resize's and the
    // hash's variability still are).
    cpuSpread[op] = fit?.spread ?? 1;
    routes[op] = {
      route: live,
      requests: row.count,
      failed: row.failed,
      p50Ms: round3(row.p50),
      p99Ms: round3(row.p99),
      work: w,
      modelledWorkMs: round3(modelled),
      cpuMs: round3(cpu),
      ...(fit ? { httpMs: round3(fit.httpMs), missCpuMs: round3(fit.missCpuMs), outcomes: fit.outcomes } : {}),
    };
  }
  for (const [op, r] of Object.entries(routes)) if (r.cpuMs === 0) notes.push(`${op}: its median latency (${formatValue(r.p50Ms, 'ms')}) was below its work's cost at the parts' medians (${formatValue(r.modelledWorkMs, 'ms')}), so its app CPU is 0: the machine's other load moved a measurement; measure again on a quieter machine.`);
  if (problems.length) throw new RunError(`the calibration workload did not run cleanly: ${problems.join('; ')}`, EXIT.FAILED);
  const profile: Calibration = {
    format: CALIBRATION_FORMAT,
    measuredAt: new Date().toISOString(),
    seed: o.seed,
    topology: config.name,
    stack: o.backends ? 'real' : 'embedded',
    databases: o.backends?.postgres ? 'postgres' : 'embedded',
    iterations: o.iterations,
    machine: machineIdentity(),
    commit: commitIdentity(),
    costs: { ...base, cpuMs, cpuSpread, missCpuMs, wakeMs: round3(wake.wakeMs), wakeTauMs: round3(wake.tauMs), wakeShare: round3(Math.max(0.01, wake.share)) },
    wake: { backToBackP50Ms: round3(medians.back), afterShortIdleP50Ms: round3(medians.short), afterLongIdleP50Ms: round3(medians.long), burstFirstP50Ms: round3(medians.burstFirst), burstNextP50Ms: round3(medians.burstNext), shortIdleMs: IDLE_S.short * 1000, longIdleMs: IDLE_S.long * 1000 },
    // The live server is one Node event loop: one app server with one worker.
    app: { appServers: 1, workersPerServer: 1 },
    parts,
    routes,
    notes: [
      'Costs are medians of sequential requests on an idle server (no queueing): the simulator adds queueing from its own resources. Each part was timed twice, before and after the routes, and the lower median kept.',
      "Each route's requests are split by outcome as the server counted them: whether any cache key missed (hit / miss), and where its reads went (replica, primary, none). An outcome's app CPU is its server-side median less its counted work at the parts' costs.",
      "A route's cpuSpread is its basis outcome's server-side (p99 − work cost) ÷ its app CPU, at least 1: the simulator draws each request's app CPU from a log-normal with median cpuMs and that ratio at p99, so its tail is this machine's and not queueing alone (the mean of such a draw is above its median, as a tail makes it). The resize's and the hash's variability is in it too.",
      `The wake-up: idle time builds a debt towards wakeMs (by 1 − e^(−idle ÷ wakeTauMs) of what is missing) and each request pays wakeShare of the debt left, so the cold state wears off over the next requests, not with the first. The three are fitted by least squares to four warm feed reads' medians less back to back: after ${IDLE_S.short * 1000} ms of idle, after ${IDLE_S.long * 1000} ms, and the first and second of a pair after ${IDLE_S.long * 1000} ms. The routes above are measured back to back: under load, requests follow each other.`,
      `A route's cpuMs is the HTTP share of its latency (its p50 as the runner measures it — client, HTTP, Fastify and handler — less the server-side median) plus the app CPU of its commonest all-hit outcome (of the commonest outcome when none of at least ${MIN_OUTCOME_REQUESTS} requests hit). missCpuMs is the app CPU per missed key: the commonest miss outcome's app CPU less the all-hit outcome's, over its keys missed per request (0 when no outcome of at least ${MIN_OUTCOME_REQUESTS} requests missed, or all did).`,
      'appServers 1 × workersPerServer 1 and sharedThread: the live server is one Node event loop, which also runs its caches, SQLite databases, Redis client and jobs; the simulator admits each of those parts\' visits on the app thread too (the password hash and the resize wait in libuv\'s pool, off it).',
      'The work per request recorded here is for the reader: the simulator computes the work of each request by its own rules and reads only the costs.',
      `Harness: event-loop delay p99 ${kf.harness ? formatValue(kf.harness.p99Ms, 'ms') : 'not measured'} during the route measurement.`,
      ...notes,
    ],
  };
  // What this command writes must pass its own schema.
  return parseCalibration(JSON.stringify(profile), 'the measured profile');
}

export function calibrationText(p: Calibration): string {
  const ms = (v: number) => formatValue(v, 'ms');
  const lines = [`calibration of ${p.machine.hostname} (${p.machine.cpuModel}, ${p.machine.cores} cores, Node ${p.machine.nodeVersion}) at ${p.commit.sha.slice(0, 12)}${p.commit.dirty ? ' (uncommitted changes)' : ''}${p.stack === 'real' ? `, on the real parts (memcached, Redis, RabbitMQ; ${p.databases === 'postgres' ? 'the store on Postgres' : 'databases embedded'})` : ''}`, ''];
  lines.push('  route        requests      p50      p99   work cost   app CPU (fitted)   app CPU p99 ÷ p50');
  for (const [op, r] of Object.entries(p.routes)) lines.push(`  ${op.padEnd(12)} ${String(r.requests).padStart(8)} ${ms(r.p50Ms).padStart(8)} ${ms(r.p99Ms).padStart(8)} ${ms(r.modelledWorkMs).padStart(11)} ${ms(r.cpuMs).padStart(12)} ${String(p.costs.cpuSpread?.[op as keyof Costs['cpuMs']] ?? 1).padStart(17)}`);
  const outcomeRows = Object.entries(p.routes).flatMap(([op, r]) => Object.entries(r.outcomes ?? {}).map(([o, v]) => `  ${op.padEnd(12)} ${o.padEnd(14)} ${String(v.requests).padStart(8)} ${ms(v.serverP50Ms).padStart(10)} ${ms(v.serverP99Ms).padStart(10)} ${ms(v.modelledWorkMs).padStart(11)} ${ms(v.appMs).padStart(9)}`));
  if (outcomeRows.length) {
    lines.push('', '  per outcome   (server side)  requests   p50 (srv)  p99 (srv)   work cost   app CPU');
    lines.push(...outcomeRows);
    const miss = Object.entries(p.costs.missCpuMs ?? {}).filter(([, v]) => v > 0);
    lines.push(`  app CPU per missed key: ${miss.length ? miss.map(([op, v]) => `${op} ${ms(v)}`).join(', ') : 'none fitted'}`);
  }
  if (p.wake) lines.push('', `  wake-up: a warm feed read ${ms(p.wake.backToBackP50Ms)} back to back, ${ms(p.wake.afterShortIdleP50Ms)} after ${ms(p.wake.shortIdleMs)} idle, ${ms(p.wake.afterLongIdleP50Ms)} after ${ms(p.wake.longIdleMs)}${p.wake.burstFirstP50Ms !== undefined && p.wake.burstNextP50Ms !== undefined ? `, a pair after ${ms(p.wake.longIdleMs)} ${ms(p.wake.burstFirstP50Ms)} then ${ms(p.wake.burstNextP50Ms)}` : ''}: wakeMs ${ms(p.costs.wakeMs ?? 0)}, wakeTauMs ${ms(p.costs.wakeTauMs ?? 0)}, wakeShare ${p.costs.wakeShare ?? 1}`);
  const c = p.costs;
  lines.push('', `  queries: pk read ${ms(c.queryMs.pkRead)}, range read ${ms(c.queryMs.rangeRead)}, write ${ms(c.queryMs.write)}; memcached ${c.memcachedOpUs} µs + ${c.memcachedKeyUs} µs per key; Redis ${c.redisOpUs} µs per command, ${c.redisPushUs ?? c.redisOpUs} µs per fan-out delivery`);
  lines.push(`  job overhead ${ms(c.jobOverheadMs)}, resize ${ms(c.resizeMs)}, blob puts ${ms(c.blobPutMs)}, password hash ${ms(c.passwordHashMs)}; app: ${p.app.appServers} server × ${p.app.workersPerServer} worker (one event loop)`);
  return lines.join('\n') + '\n';
}

export async function calibrateCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    topology: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string' },
    iterations: { type: 'string' },
    'part-samples': { type: 'string' },
    'idle-seconds': { type: 'string' },
    stack: { type: 'string' },
    'stack-dir': { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const seed = values.seed === undefined ? DEFAULT_CALIBRATION_SEED : seedOption(values.seed);
  const iterations = intOption(values.iterations, 'iterations', 300, 1, 100_000);
  const partSamples = intOption(values['part-samples'], 'part-samples', 500, 10, 1_000_000);
  const idleSeconds = intOption(values['idle-seconds'], 'idle-seconds', 3, 1, 600);
  const out = resolve(values.out ?? DEFAULT_PROFILE);
  writableFile(out); // before a minute of measuring, not after
  const stack = values.stack ?? 'embedded';
  if (stack !== 'embedded' && stack !== 'real') throw new UsageError(`--stack ${stack}: embedded or real`);
  if (values['stack-dir'] !== undefined && stack !== 'real') throw new UsageError('--stack-dir goes with --stack real');
  let topology = values.topology;
  let backends: RealStack | undefined;
  if (stack === 'real') {
    const chosen = await chooseRealStack('calibrate', values['stack-dir'], topology !== undefined);
    if (typeof chosen === 'string') {
      process.stderr.write(`scalegram calibrate: ${chosen}\n`);
      return EXIT.UNAVAILABLE;
    }
    backends = chosen.backends;
    topology ??= chosen.topologyFile;
  }
  let profile: Calibration;
  try {
    profile = await calibrate({ ...(topology ? { topology } : {}), ...(backends ? { backends } : {}), seed, iterations, partSamples, idleSeconds, onProgress: (line) => values.quiet || process.stderr.write(line + '\n') });
  } catch (e) {
    if (e instanceof RunError) {
      process.stderr.write(`scalegram calibrate: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
  const text = JSON.stringify(profile, null, 2) + '\n';
  process.stdout.write(calibrationText(profile));
  try {
    writeFileSync(out, text);
  } catch (e) {
    // Checked before measuring, but the disk can still fill or the directory go: keep the measurement.
    const kept = join(tmpdir(), `scalegram-calibration-${Date.now()}.json`);
    writeFileSync(kept, text);
    process.stderr.write(`scalegram calibrate: cannot write ${out} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the profile is in ${kept}\n`);
    return EXIT.FAILED;
  }
  process.stdout.write(`\nprofile: ${out}\n`);
  return EXIT.OK;
}

/** Makes `file`'s directory and checks that the file can be written there; a UsageError (exit 2) saying why not. */
function writableFile(file: string): void {
  const why = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  try {
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--out ${file} is a directory; give the profile's file name`);
    mkdirSync(dirname(file), { recursive: true });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--out ${file}: cannot make its directory ${dirname(file)} (${why(e)})`);
  }
  try {
    accessSync(dirname(file), constants.W_OK);
    if (statSync(file, { throwIfNoEntry: false })) accessSync(file, constants.W_OK);
  } catch (e) {
    throw new UsageError(`--out ${file}: cannot write there (${why(e)})`);
  }
}
