// A scenario replayed in virtual time: the script is loaded as a live run loads it (k6 modules,
// __ENV, its options resolved by the same code), its `population` and `work` declarations are read
// as data, and sim/model runs the growth event at full scale with no HTTP and no wall clock. Every
// request the model answers is recorded in the runner's own k6 metric registry (on a virtual
// clock), thresholds are judged by the same code, and the result document has the shape of a live
// run's, marked as simulated, so reports, compare and sweep read it unchanged.

import { resolve } from 'node:path';
import { simError, isSimError } from '../../sim/engine/errors.ts';
import { Prng } from '../../sim/engine/prng.ts';
import { VirtualModel, type SimRecorder } from '../../sim/model/model.ts';
import { METHOD_OF, OPS, planScenarios, ROUTE_OF, type Instr, type OpInstr, type PlannedScenario } from '../../sim/model/plan.ts';
import { saturation, SIM_EPOCH_MS, telemetrySnapshot, topologyDescription, weightedQuantiles } from '../../sim/model/snapshot.ts';
import { loadTopology, topologyFromValue, withOverrides, type TopologyInput } from '../../sim/topology-config.ts';
import { MetricRegistry, type Tags } from './k6-metrics.ts';
import { OptionsError, resolveOptions } from './options.ts';
import { RESULT_FORMAT, type ResultDocument, type SimulationSection, type TopologyDescription } from './results.ts';
import { loadScript, ScriptLoadError, type ScriptModule } from './script-loader.ts';
import { cfgEnv, prepareK6, RunError, scenarioName, TOPOLOGY_METRICS } from './run.ts';
import { scriptErrorText } from './script-error.ts';
import { setRuntime, type Runtime } from './runtime.ts';
import { CheckRecorder, summaryExport } from './summary-export.ts';
import { ThresholdError, Thresholds } from './thresholds.ts';
import type { VirtualPacer } from './virtual-pacer.ts';

export const SIMULATION_MODEL = 'scalegram-virtual/1';

/**
 * The fields of a simulated result.json that depend on the wall clock or the machine. Everything
 * else is a function of the scenario, topology, seed and options: two simulations with one seed
 * write the same bytes once these are set aside.
 */
export const WALL_CLOCK_FIELDS = ['startedAt', 'simulation.wall'] as const;

export interface SimulateConfig {
  scriptPath: string;
  topology?: string;
  seed: number;
  scale: number;
  env: Record<string, string>;
  /** Empty caches at the start (as after a restart) instead of the warm steady state. */
  cold?: boolean;
  /**
   * Time compression as `scalegram run --speed` applies it (durations and sleeps ÷ speed, rates ×
   * speed): the same offered load as a live run at that speed (default 1: real-world time).
   */
  speed?: number;
  /** Merged over the topology's config after it is resolved: a calibration profile's capacities (sim/calibration.ts). */
  overrides?: TopologyInput;
  onProgress?: (p: { virtualMs: number; events: number; plannedMs: number }) => void;
  /**
   * Paces the simulation against the wall clock (the dashboard's pause, step and speed, and its
   * actions at the current virtual time) instead of running it flat out in one go.
   */
  pacer?: VirtualPacer;
  /** Called once the model is built, before it runs: what a dashboard reads its frames from. */
  onModel?: (m: SimulationView) => void | Promise<void>;
}

/** A simulation under way, as a dashboard reads it. */
export interface SimulationView {
  model: VirtualModel;
  registry: MetricRegistry;
  scenario: string;
  seed: number;
}

export interface SimulateResult {
  doc: ResultDocument & { simulation: SimulationSection };
  summary: object;
  thresholdsFailed: boolean;
}

function checkPopulation(value: unknown, script: string): { accounts: number; avgFollows: number; celebrities: number; mediaPerUser: number; celebrityReach?: number; minAccounts?: number } {
  const p = value as Record<string, unknown> | undefined;
  const num = (k: string) => (p && typeof p[k] === 'number' && Number.isFinite(p[k]) ? (p[k] as number) : NaN);
  if (!p || typeof p !== 'object' || !(num('accounts') >= 1) || !(num('avgFollows') >= 0) || !(num('mediaPerUser') >= 0)) {
    throw simError(
      'SG_ERR_INVALID_PARAM',
      `${script} cannot be simulated: it exports no valid \`population\` (the base it starts from, at full scale): export const population = { accounts: 30_000_000, avgFollows: 20, celebrities: 5, mediaPerUser: 2 } (see scenarios/lib/work.ts).`,
    );
  }
  return { accounts: num('accounts'), avgFollows: num('avgFollows'), celebrities: Number.isFinite(num('celebrities')) ? num('celebrities') : 5, mediaPerUser: num('mediaPerUser'), ...(Number.isFinite(num('celebrityReach')) ? { celebrityReach: num('celebrityReach') } : {}), ...(Number.isFinite(num('minAccounts')) ? { minAccounts: num('minAccounts') } : {}) };
}

/**
 * The plan at `speed`: sleeps and admin replica lags are real-world time, which live runs divide by
 * --speed (k6 sleep, adminRequest); options.ts already compressed the scenarios' own durations.
 */
export function compressPlan(plan: PlannedScenario[], speed: number): PlannedScenario[] {
  if (speed === 1) return plan;
  return plan.map((sc) => ({
    ...sc,
    program: sc.program.map((ins): Instr => {
      if (ins.kind === 'sleep') return { ...ins, ms: ins.ms / speed };
      if (ins.kind === 'op' && ins.admin?.action === 'db_lag') return { ...ins, admin: { ...ins.admin, lagMs: ins.admin.lagMs / speed } };
      return ins;
    }),
  }));
}

export async function simulateRun(cfg: SimulateConfig): Promise<SimulateResult> {
  const wallStart = Date.now();
  const scriptPath = resolve(cfg.scriptPath);
  prepareK6();
  let virtualMs = 0;
  const registry = new MetricRegistry(() => SIM_EPOCH_MS + virtualMs);
  for (const g of TOPOLOGY_METRICS) registry.define(g, 'trend', g.endsWith('_ms') ? 'time' : 'default');
  const checks = new CheckRecorder();
  const speed = cfg.speed ?? 1;
  const env: Record<string, string> = { ...cfgEnv({ speed, scale: cfg.scale, seed: cfg.seed }), ...cfg.env, SCALEGRAM_SIMULATE: '1', SCALEGRAM_OWN_SERVER: '1' };
  let rawOptions: unknown;
  const runtime: Runtime = {
    registry,
    env,
    nowMs: () => SIM_EPOCH_MS + virtualMs,
    speed,
    get options() {
      return rawOptions;
    },
    abort: () => undefined,
    baseUrl: '',
    checks,
    stats: () => ({ iterationsCompleted: 0, iterationsInterrupted: 0, vusActive: 0, vusInitialized: 0, currentTestRunDurationMs: virtualMs }),
  };
  setRuntime(runtime);
  const rng = new Prng(cfg.seed).fork('script');
  const realRandom = Math.random;
  Math.random = () => rng.next();
  try {
    let mod: ScriptModule;
    try {
      mod = loadScript(scriptPath).module(0);
    } catch (e) {
      throw new RunError(`the script failed to load: ${e instanceof ScriptLoadError ? e.message : scriptErrorText(e, scriptPath)}`, 107);
    }
    let config;
    try {
      config = withOverrides(cfg.topology ? loadTopology(cfg.topology) : topologyFromValue(mod.topology), cfg.overrides);
    } catch (e) {
      if (isSimError(e, 'SG_ERR_CONFIG_INVALID')) throw new RunError(e.message, 104);
      throw e;
    }
    const execNames = Object.keys(mod).filter((k) => typeof mod[k] === 'function' && !['setup', 'teardown', 'handleSummary'].includes(k));
    let options;
    try {
      options = resolveOptions(mod.options ?? {}, { speed, scale: cfg.scale, execNames });
    } catch (e) {
      if (e instanceof OptionsError) throw new RunError(`invalid options: ${e.message}`, 104);
      throw e;
    }
    rawOptions = options.raw;
    let thresholds: Thresholds;
    try {
      thresholds = new Thresholds(options.thresholds as never, registry);
    } catch (e) {
      if (e instanceof ThresholdError) throw new RunError(`invalid thresholds: ${e.message}`, 104);
      throw e;
    }
    let plan;
    let population;
    try {
      plan = compressPlan(planScenarios(cfg.scriptPath, options.scenarios, mod.work as never), speed);
      population = checkPopulation(mod.population, cfg.scriptPath);
    } catch (e) {
      if (isSimError(e)) throw new RunError(e.message, 104);
      throw e;
    }
    // --scale scales populations and rates (resolveOptions scaled the rates), never capacities or thresholds.
    // As live runs, at least `minAccounts` (a fixed base, e.g. hash-vs-range's 1,000); no seeding budget applies here.
    const scaled = { ...population, accounts: Math.max(population.minAccounts ?? 1, Math.round(population.accounts * cfg.scale)) };

    // The recorder: every answered request into the runner's registry, tagged as the live runner
    // tags it; the recorders for each (scenario, op, status) are bound once (no tag work per sample).
    const scenarioTags = plan.map((sc) => ({ scenario: sc.name, group: '' }));
    interface RequestRecorders {
      reqs: (v: number) => void;
      dur: (v: number) => void;
      failed: (v: number) => void;
      check: ((v: number) => void) | null;
      counter: ((v: number) => void) | null;
    }
    const bound = new Map<number, RequestRecorders>();
    const OP_INDEX = new Map(OPS.map((o, i) => [o, i]));
    const recordersFor = (s: number, ins: OpInstr, status: number): RequestRecorders => {
      const key = (s * 64 + OP_INDEX.get(ins.op)!) * 1000 + status;
      let r = bound.get(key);
      if (!r) {
        const t: Tags = { name: ROUTE_OF[ins.op], method: METHOD_OF[ins.op], status: String(status), scenario: plan[s]!.name, expected_response: String(status < 400), group: '', proto: 'HTTP/1.1' };
        r = {
          reqs: registry.bound('http_reqs', t),
          dur: registry.bound('http_req_duration', t),
          failed: registry.bound('http_req_failed', t),
          check: ins.check === null ? null : registry.bound('checks', { ...scenarioTags[s]!, check: ins.check }),
          counter: ins.counter !== null && registry.has(ins.counter) ? registry.bound(ins.counter, scenarioTags[s]!) : null,
        };
        bound.set(key, r);
      }
      return r;
    };
    const iters = plan.map((_, s) => registry.bound('iterations', scenarioTags[s]!));
    const iterDur = plan.map((_, s) => registry.bound('iteration_duration', scenarioTags[s]!));
    const dropped = plan.map((_, s) => registry.bound('dropped_iterations', scenarioTags[s]!));
    const vus = registry.metric('vus');
    const vusMax = registry.metric('vus_max');
    const counts = { completed: 0, dropped: 0 };
    let model: VirtualModel | null = null;
    let lastWriteLost = 0;
    const recorder: SimRecorder = {
      request(s, ins, status, ms, now) {
        virtualMs = now;
        const r = recordersFor(s, ins, status);
        r.reqs(1);
        r.dur(ms);
        r.failed(status >= 400 ? 1 : 0);
        if (r.check) {
          const ok = ins.ok.includes(status);
          checks.record([], ins.check!, ok);
          r.check(ok ? 1 : 0);
        }
        if (r.counter && status === 200) r.counter(1);
      },
      iteration(s, ms, now) {
        virtualMs = now;
        counts.completed++;
        iters[s]!(1);
        iterDur[s]!(ms);
      },
      dropped(s, now) {
        virtualMs = now;
        counts.dropped++;
        dropped[s]!(1);
      },
      vus(busy, max, now) {
        virtualMs = now;
        vus.add(busy, {});
        vusMax.add(max, {});
      },
      step(now) {
        // The topology measures thresholds can name, as the live runner samples them from /_sim/scalars.
        virtualMs = now;
        const m = model!;
        const S = m.series;
        const i = S.t.length - 1;
        const lookups = S.cacheLookups[i]!.reduce((a, b) => a + b, 0);
        if (lookups > 0) registry.add('cache_hit_rate', S.cacheHits[i]!.reduce((a, b) => a + b, 0) / lookups, {});
        if (m.stepFanoutLagMax >= 0) registry.add('fanout_lag_ms', m.stepFanoutLagMax, {});
        let total = 0;
        let max = 0;
        for (let k = 0; k < m.shardOps.length; k++) {
          total += m.shardOps[k]!;
          if (m.shardOps[k]! > max) max = m.shardOps[k]!;
        }
        if (total > 0) registry.add('shard_skew', max / (total / m.shardOps.length), {});
        const holding = m.topo.servers.filter((x) => m.topo.shardMap.shardsOn(x.index).length > 0);
        const sTotal = holding.reduce((a, x) => a + x.ops, 0);
        if (sTotal > 0) registry.add('server_skew', Math.max(...holding.map((x) => x.ops)) / (sTotal / holding.length), {});
        registry.add('stale_reads', m.staleReads, {});
        registry.add('replica_lag_ms', Math.max(0, ...S.replicaLag[i]!), {});
        registry.add('queue_depth', S.queueDepth[i]!, {});
        if (m.topo.writesLost !== lastWriteLost || i === 0) registry.add('db_writes_lost', m.topo.writesLost, {});
        lastWriteLost = m.topo.writesLost;
      },
    };

    model = new VirtualModel({
      config,
      seed: cfg.seed,
      population: scaled,
      scenarios: plan,
      recorder,
      ...(cfg.cold ? { cold: true } : {}),
      onProgress: (now, events) => cfg.onProgress?.({ virtualMs: now, events, plannedMs: model?.endMs ?? 0 }),
    });
    await cfg.onModel?.({ model, registry, scenario: scenarioName(scriptPath), seed: cfg.seed });
    // Paced, the simulation shares the event loop with the dashboard: nothing else draws from the script's seeded Math.random meanwhile (the model draws from its own Prng).
    if (cfg.pacer) Math.random = realRandom;
    const events = cfg.pacer ? await cfg.pacer.drive(model) : model.run();
    const durationMs = model.sim.now;
    virtualMs = durationMs;
    const final = thresholds.evaluate(durationMs, { final: true });
    const summary = summaryExport(registry, final.results, checks.tree(), { testRunDurationMs: durationMs, options: options.raw });
    const sat = saturation(model);
    const f = model.fanout;
    const [p50, p99] = weightedQuantiles(f.deliveryLag, f.deliveryWeight, [0.5, 0.99]);
    const deg = model.pop.degreeSummary();
    const wallMs = Date.now() - wallStart;
    const simulation: SimulationSection = {
      model: SIMULATION_MODEL,
      parameters: { ...config.capacity, poolSize: config.database.poolSize, poolQueueLimit: config.database.poolQueueLimit, replicaLagMs: config.database.replicaLagMs, workers: config.queue.workers, queueMaxDepth: config.queue.maxDepth, cacheNodes: config.cache.nodes, leases: config.cache.leases, fanout: config.feed.fanout, chunkSize: config.feed.chunkSize, hybridThreshold: config.feed.hybridThreshold },
      population: {
        accounts: model.pop.base,
        signups: model.pop.size - model.pop.base,
        followEdges: deg.edges,
        followers: { max: deg.max, p99: deg.p99, p50: deg.p50 },
        celebrities: Array.from(model.pop.celebrities, (i) => ({ id: model!.pop.userId(i), followers: model!.pop.followers[i]! })),
      },
      warm: model.warm,
      events,
      saturation: sat.first,
      resources: sat.peaks,
      delivery: f.deliveries > 0 ? { deliveries: f.deliveries, p50Ms: p50!, p99Ms: p99!, maxMs: f.deliveryLag.reduce((a, b) => (b > a ? b : a), 0) } : null,
      stepMs: model.stepMs,
      wall: { ms: wallMs, eventsPerS: Math.round(events / Math.max(0.001, wallMs / 1000)), peakRssBytes: process.resourceUsage().maxRSS * 1024 },
    };
    const doc: ResultDocument & { simulation: SimulationSection } = {
      format: RESULT_FORMAT,
      scenario: scenarioName(scriptPath),
      script: scriptPath,
      seed: cfg.seed,
      speed,
      scale: cfg.scale,
      target: 'simulated',
      startedAt: new Date(wallStart).toISOString(),
      loadStartedAt: new Date(SIM_EPOCH_MS).toISOString(),
      durationMs,
      aborted: cfg.pacer?.stoppedBecause ?? null,
      iterations: { completed: counts.completed, interrupted: 0, dropped: counts.dropped, errors: 0, errorMessages: [] },
      options: { ...options },
      thresholds: final.results,
      topology: topologyDescription(model, cfg.seed) as unknown as TopologyDescription,
      metrics: registry.toJSON(),
      series: registry.series(),
      telemetry: telemetrySnapshot(model),
      checks: checks.tree(),
      simulation,
    };
    return { doc, summary, thresholdsFailed: final.failed };
  } finally {
    Math.random = realRandom;
    setRuntime(null);
  }
}
