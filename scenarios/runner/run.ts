// One scenario run, as a handle: it builds (or targets) the server, loads a k6-dialect script,
// runs setup, its scenarios through the executors, and teardown, samples the topology's telemetry,
// evaluates thresholds as it goes, and resolves to a plain result. Printers only subscribe to it.

import type { MemcachedSpec } from '../../sim/backends/memcached.ts';
import type { PostgresServerSpec } from '../../sim/backends/postgres/pg-tier.ts';
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { scriptErrorText, userFrame } from './script-error.ts';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { serveTopology } from '../../server/serve-topology.ts';
import type { ServiceHost } from '../../server/service-host.ts';
import { AdminApiSource } from '../../dashboard/admin-source.ts';
import { startDashboard, type Dashboard } from '../../dashboard/server.ts';
import { RealClock } from '../../sim/engine/clock.ts';
import { randomSecret } from '../../sim/domain/credentials.ts';
import { Prng } from '../../sim/engine/prng.ts';
import { isSimError } from '../../sim/engine/errors.ts';
import { loadTopology, topologyFromValue } from '../../sim/topology-config.ts';
import { ServerThreadError, startServerThread, type ServerThread } from './server-thread.ts';
import type { HarnessSection } from './results.ts';
import { startScenario, type ScenarioRun } from './executors/index.ts';
import { MetricRegistry, TOPOLOGY_METRICS } from './k6-metrics.ts';
import { closeHttpClient } from './k6/http.ts';
import { installGlobals, registerK6Modules } from './k6/register.ts';
import { SHIM_ERRORS } from './k6/host.ts';
import { JsonOutput } from './json-output.ts';
import { loadScript, ScriptLoadError, type LoadedScript, type ScriptModule } from './script-loader.ts';
import { maxPlannedVUs, OptionsError, resolveOptions, withShortcuts, type ResolvedOptions, type ShortcutLayer } from './options.ts';
import { setRuntime, vuStorage, type Runtime, type ScenarioState, type VuState } from './runtime.ts';
import { CheckRecorder, summaryData, summaryExport } from './summary-export.ts';
import { ThresholdError, Thresholds, type ThresholdResult } from './thresholds.ts';
import { VuPool } from './vu-pool.ts';

export interface RunConfig {
  scriptPath: string;
  /** An already running server; default: build the topology and serve it in a worker thread of its own. */
  target?: string;
  /** Serve the topology in this thread, sharing the runner's event loop (for debugging; the old default). */
  inProcess?: boolean;
  topology?: string;
  /** Time compression (1 = real time). */
  speed: number;
  /** Population and rate factor. */
  scale: number;
  seed: number;
  env: Record<string, string>;
  /** k6's `--out json=FILE`: every sample as a line of k6's JSON output. */
  jsonOut?: string;
  /** k6's execution shortcuts from the environment (K6_VUS …) and the command line (--vus …), lowest first. */
  shortcuts?: ShortcutLayer[];
  /** k6 --no-thresholds: the script's thresholds are neither evaluated nor reported, and never fail the run. */
  noThresholds?: boolean;
  /** Interval of progress ticks, threshold evaluation and telemetry sampling (ms). */
  tickMs?: number;
  /** Real backends for the server the run builds (`--stack real`); default all embedded. Not with a target. */
  backends?: { redisUrl: string; amqpUrl: string; memcached?: MemcachedSpec; postgres?: readonly PostgresServerSpec[] };
  /** Serve the teaching dashboard of the server under test on loopback while the run lasts (port 0: a free one); emits 'dashboard' with its URL. */
  dashboard?: { port: number };
}

export { TOPOLOGY_METRICS } from './k6-metrics.ts';

export class RunError extends Error {
  constructor(
    message: string,
    /** The exit code this failure means (104 config, 107 script error). */
    readonly exitCode: number,
    /** The k6-shaped summary export of what ran before the failure (k6 writes it when setup throws too). */
    readonly summary?: object,
  ) {
    super(message);
  }
}

export interface Tick {
  elapsedMs: number;
  plannedMs: number;
  reqPerS: number;
  vus: number;
  errors: number;
  dropped: number;
  iterations: number;
}

export interface RunResult {
  scenario: string;
  scriptPath: string;
  seed: number;
  speed: number;
  scale: number;
  target: string;
  startedMs: number;
  /** Unix ms when the scenarios started, after setup (null if the run ended before). */
  loadStartedMs: number | null;
  /** The event loop's delay over the run (ms): queueing inside this process, server and load generator. */
  harness: HarnessSection;
  durationMs: number;
  /** k6's test run duration: from the start of setup to the end of teardown (ms); counter rates divide by it. */
  testRunDurationMs: number;
  options: ResolvedOptions;
  thresholds: ThresholdResult[];
  thresholdsFailed: boolean;
  aborted: string | null;
  registry: MetricRegistry;
  checks: CheckRecorder;
  summary: object;
  summaryData: object;
  topology: unknown;
  telemetry: unknown;
  /**
   * Operations per physical database server (primary and replicas, `cluster/server`) when the load
   * began, after setup's seeding: what `scalegram validate` subtracts to count the load's own. Null
   * when the telemetry could not be read.
   */
  serverOpsAtLoadStart: Record<string, number> | null;
  /** What the script's handleSummary(data) returned ({ path | 'stdout' | 'stderr': content }), or null without one. */
  summaryFiles: Record<string, unknown> | null;
  /** `errors`: iterations that threw (k6 logs these and goes on); `errorMessages`: the first distinct ones, with counts. */
  iterations: { completed: number; interrupted: number; dropped: number; errors: number; errorMessages: Array<{ message: string; scenario: string; count: number }> };
}

type ExecFn = (data: unknown) => unknown;

let modulesRegistered = false;

/** Registers the k6 module loader and globals once per process (a run and a simulation both need them). */
export function prepareK6(): void {
  if (modulesRegistered) return;
  registerK6Modules();
  installGlobals();
  modulesRegistered = true;
}

export class RunHandle extends EventEmitter {
  private aborted: string | null = null;
  private readonly abortController = new AbortController();

  constructor(readonly config: RunConfig) {
    super();
  }

  /** A --target server refused the admin API: say once how to pass its token, and stop asking. */
  private noteAdminRefusal(admin: AdminAccess, e: unknown): void {
    if (!(e instanceof AdminRefused) || admin.refused) return;
    admin.refused = true;
    this.emit(
      'warning',
      admin.token
        ? 'the target refused the admin token given as ADMIN_TOKEN (401 on /_sim): topology telemetry is not collected'
        : 'the target requires its admin token for /_sim (401): pass -e ADMIN_TOKEN=<the token scalegram serve printed> to collect topology telemetry',
    );
  }

  abort(reason: string): void {
    if (this.aborted) return;
    this.aborted = reason;
    this.abortController.abort(new Error(reason));
  }

  async run(): Promise<RunResult> {
    const cfg = this.config;
    const clock = new RealClock();
    const scriptPath = resolve(cfg.scriptPath);
    prepareK6();

    let host: ServiceHost | null = null;
    let dashboard: Dashboard | null = null;
    let server: ServerThread | null = null;
    let baseUrl = cfg.target?.replace(/\/+$/, '') ?? '';

    const registry = new MetricRegistry(() => clock.nowMs());
    // How late the event loop ran: in process, server and load generator share it, so a busy loop
    // is queueing that the latencies include (the reports say so when it is large).
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    for (const g of TOPOLOGY_METRICS) registry.define(g, 'trend', g.endsWith('_ms') ? 'time' : 'default');
    const checks = new CheckRecorder();
    const vus = new VuPool();
    const counts = { completed: 0, interrupted: 0, dropped: 0, errors: 0 };
    // The first distinct iteration errors, counted (a failed fault injection must not pass unnoticed).
    const errorMessages: Array<{ message: string; scenario: string; count: number }> = [];
    const noteError = (scenario: string, e: unknown) => {
      const message = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);
      const known = errorMessages.find((x) => x.message === message && x.scenario === scenario);
      if (known) known.count++;
      else if (errorMessages.length < 10) errorMessages.push({ message, scenario, count: 1 });
    };
    // A promise the script left un-awaited (a call the sync transform could not follow) that
    // rejects later: an iteration error of the run, not a crash of the process.
    const onUnhandled = (reason: unknown): void => {
      counts.errors++;
      noteError('(not awaited)', reason);
      this.emit('iteration-error', reason instanceof Error ? Object.assign(new Error(`${reason.message} (a call the script did not wait for)`), { stack: reason.stack }) : reason);
    };
    process.on('unhandledRejection', onUnhandled);
    const startedMs = clock.nowMs();
    const env: Record<string, string> = { ...cfgEnv(cfg), ...(cfg.target ? { BASE_URL: baseUrl } : {}), ...cfg.env };
    // The admin token of the server: the in-process one gets a fresh one, handed to the script as
    // __ENV.ADMIN_TOKEN; a --target server's is given with -e ADMIN_TOKEN=… (or $SCALEGRAM_ADMIN_TOKEN).
    if (!cfg.target) {
      env.ADMIN_TOKEN = randomSecret();
      // The server is built for this run from the script's topology and the run's seed: an exported
      // bundle's setup has no world to apply (scenarios/lib/world.ts).
      env.SCALEGRAM_OWN_SERVER = '1';
    } else if (!env.ADMIN_TOKEN && process.env.SCALEGRAM_ADMIN_TOKEN) env.ADMIN_TOKEN = process.env.SCALEGRAM_ADMIN_TOKEN;
    if (env.ADMIN_TOKEN === '') delete env.ADMIN_TOKEN;
    const admin: AdminAccess = { token: env.ADMIN_TOKEN ?? null, refused: false };
    let options: ResolvedOptions | null = null;
    let jsonOut: JsonOutput | null = null;

    const runtime: Runtime = {
      registry,
      env,
      nowMs: () => clock.nowMs(),
      speed: cfg.speed,
      get options() {
        return options?.raw;
      },
      abort: (reason) => this.abort(reason),
      baseUrl,
      checks,
      stats: () => ({ iterationsCompleted: counts.completed, iterationsInterrupted: counts.interrupted, vusActive: vus.active(), vusInitialized: vus.max(), currentTestRunDurationMs: clock.nowMs() - startedMs }),
    };
    setRuntime(runtime);
    // Scripts that use Math.random replay from the run's seed (k6's randomSeed does the same). Each
    // iteration draws from a stream of its own, forked from the seed by its scenario and its index
    // in the scenario, so what it picks does not depend on how the VUs' requests interleaved: the
    // same iterations make the same choices on a busy machine and a quiet one. Init code, setup and
    // teardown share one stream.
    const rng = new Prng(cfg.seed).fork('script');
    const realRandom = Math.random;
    Math.random = () => {
      const vu = vuStorage.getStore();
      if (!vu) return rng.next();
      vu.random ??= rng.fork(`${vu.scenario.name}#${vu.iterationInScenario}`);
      return vu.random.next();
    };

    // Init code may read __ENV.BASE_URL, as it can under k6 -e: the in-process server's port is
    // chosen before the script loads (the topology is built after, from the script's export).
    /** Unix ms when the scenarios started (after setup), or null before. */
    let loadStartMs: number | null;
    let port = 0;
    if (!cfg.target) {
      port = await freePort();
      baseUrl = `http://127.0.0.1:${port}`;
      env.BASE_URL = baseUrl;
      runtime.baseUrl = baseUrl;
    }
    try {
      let script: LoadedScript;
      let mod: ScriptModule;
      try {
        script = loadScript(scriptPath);
      } catch (e) {
        throw new RunError(`the script failed to load: ${e instanceof ScriptLoadError ? e.message : scriptErrorText(e, scriptPath)}`, 107);
      }
      try {
        // VU 0, the init context: options, setup, teardown and handleSummary come from it.
        mod = script.module(0);
      } catch (e) {
        if (e instanceof Error && e.stack) e.stack = script.mapStack(e.stack);
        throw new RunError(`the script failed to load: ${scriptErrorText(e, scriptPath)}`, 107);
      }
      // The server: a running one, or the topology (--topology, else the script's exported
      // `topology`, else the default) built here and served on a free port.
      if (!cfg.target) {
        let config;
        try {
          config = cfg.topology ? loadTopology(cfg.topology) : topologyFromValue(mod.topology);
        } catch (e) {
          if (isSimError(e, 'SG_ERR_CONFIG_INVALID')) throw new RunError(e.message, 104);
          throw e;
        }
        if (cfg.inProcess) {
          host = await serveTopology({ config, seed: cfg.seed, port, adminToken: env.ADMIN_TOKEN!, ...(cfg.backends ? { backends: cfg.backends } : {}) });
        } else {
          try {
            server = await startServerThread({ config, seed: cfg.seed, port, adminToken: env.ADMIN_TOKEN!, ...(cfg.backends ? { backends: cfg.backends } : {}) });
          } catch (e) {
            if (e instanceof ServerThreadError && e.code === 'SG_ERR_CONFIG_INVALID') throw new RunError(e.message, 104);
            throw e;
          }
        }
      }
      // The dashboard reads the server under test through its admin API, as the telemetry below does.
      if (cfg.dashboard) {
        if (!env.ADMIN_TOKEN) this.emit('warning', 'the dashboard reads the target through its admin API: pass -e ADMIN_TOKEN=<the token scalegram serve printed>');
        try {
          dashboard = await startDashboard({ source: new AdminApiSource(baseUrl, env.ADMIN_TOKEN ?? '', { series: () => registry.series(), scenario: scenarioName(scriptPath) }), port: cfg.dashboard.port });
        } catch (e) {
          // A port taken or not this machine's: the user's to change, as serve's --port (exit 2).
          throw new RunError(`the dashboard cannot listen on 127.0.0.1:${cfg.dashboard.port} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): choose another --dashboard-port`, 2);
        }
        this.emit('dashboard', { url: dashboard.url });
      }
      const execNames = Object.keys(mod).filter((k) => typeof mod[k] === 'function' && !['setup', 'teardown', 'handleSummary'].includes(k));
      try {
        options = resolveOptions(withShortcuts(mod.options ?? {}, cfg.shortcuts ?? []), { speed: cfg.speed, scale: cfg.scale, execNames });
      } catch (e) {
        if (e instanceof OptionsError) throw new RunError(`invalid options: ${e.message}`, 104);
        throw e;
      }
      for (const w of options.warnings) this.emit('warning', w);
      let thresholds: Thresholds;
      try {
        thresholds = new Thresholds((cfg.noThresholds ? {} : options.thresholds) as never, registry);
      } catch (e) {
        if (e instanceof ThresholdError) throw new RunError(`invalid thresholds: ${e.message}`, 104);
        throw e;
      }
      // --out json=FILE: every sample from here on (setup's included), as k6's JSON output.
      if (cfg.jsonOut) {
        try {
          jsonOut = new JsonOutput(cfg.jsonOut, registry, options.thresholds);
        } catch (e) {
          throw new RunError(`--out json=${cfg.jsonOut}: cannot write it (${(e as Error).message})`, 104);
        }
      }

      // setup and teardown run as k6 runs them: outside any scenario, in a group of their own
      // (`::setup`, `::teardown`: their checks and samples are tagged with it), on the init stream
      // of Math.random.
      const lifecycle = (name: 'setup' | 'teardown'): VuState => {
        const now = clock.nowMs();
        checks.enterGroup([name]);
        return {
          id: 0,
          iterationInInstance: 0,
          iterationInScenario: 0,
          scenario: { name: '', executor: '', startTimeMs: now, env, tags: {}, progress: () => 0, iterationsStarted: 0 },
          tags: {},
          groups: [name],
          intendedStartMs: now,
          startMs: now,
          signal: this.abortController.signal,
          random: rng,
        };
      };
      let data: unknown = undefined;
      // k6's test run starts here, with setup: its counters' rates divide by the time from now.
      const testRunStartMs = clock.nowMs();
      /** Runs setup or teardown in its group; like k6, records its iteration_duration (not an iteration). */
      const runLifecycle = async (name: 'setup' | 'teardown', fn: () => unknown, timeoutMs: number): Promise<unknown> => {
        const state = lifecycle(name);
        try {
          return await withTimeout(Promise.resolve(vuStorage.run(state, fn)), timeoutMs, name);
        } finally {
          registry.add('iteration_duration', clock.nowMs() - state.startMs, { group: `::${name}` });
        }
      };
      const hasSetup = typeof mod.setup === 'function';
      if (hasSetup) {
        try {
          const setup = mod.setup!;
          data = await runLifecycle('setup', () => setup(), options.setupTimeoutMs);
        } catch (e) {
          if (e instanceof Error && e.stack) e.stack = script.mapStack(e.stack);
          // As k6: the thresholds are judged on what setup recorded, and the summary is written.
          const final = thresholds.evaluate(clock.nowMs() - testRunStartMs, { final: true });
          const summary = summaryExport(registry, final.results, checks.tree(), { testRunDurationMs: clock.nowMs() - testRunStartMs, options: options.raw });
          throw new RunError(`setup failed: ${scriptErrorText(e, scriptPath)}`, 107, summary);
        }
        // k6 hands each VU a copy of setup's data.
        data = data === undefined ? undefined : JSON.parse(JSON.stringify(data));
      }

      const serverOpsAtLoadStart = await serverOps(baseUrl, admin);
      const testStartMs = clock.nowMs();
      const iterationCounts = new Map<number, number>();
      const vuTags = new Map<number, Record<string, string>>();
      const runs: ScenarioRun[] = [];
      for (const s of options.scenarios) {
        const exec = s.exec;
        const iterate = async (vuId: number, scenario: ScenarioState, intendedStartMs: number, signal: AbortSignal): Promise<void> => {
          const n = iterationCounts.get(vuId) ?? 0;
          iterationCounts.set(vuId, n + 1);
          const state: VuState = {
            id: vuId,
            iterationInInstance: n,
            iterationInScenario: scenario.iterationsStarted - 1,
            scenario,
            tags: vuTags.get(vuId) ?? vuTags.set(vuId, {}).get(vuId)!,
            groups: [],
            intendedStartMs,
            startMs: clock.nowMs(),
            signal,
          };
          const t0 = state.startMs;
          try {
            // The VU's own module (its init code runs on its first iteration, k6's init stage).
            const fn = script.module(vuId)[exec] as ExecFn;
            await vuStorage.run(state, () => fn(data));
            if (signal.aborted) {
              counts.interrupted++;
              return;
            }
            counts.completed++;
            registry.add('iterations', 1, { ...scenario.tags });
            registry.add('iteration_duration', clock.nowMs() - t0, { ...scenario.tags });
          } catch (e) {
            // The iteration that called exec.test.abort() ran to its end (k6 counts it); the others
            // the abort stopped were interrupted.
            const abortedHere = (e as { code?: unknown } | null)?.code === SHIM_ERRORS.TEST_ABORTED;
            if (signal.aborted && !abortedHere) {
              counts.interrupted++;
              return;
            }
            if (abortedHere) {
              counts.completed++;
              registry.add('iterations', 1, { ...scenario.tags });
              registry.add('iteration_duration', clock.nowMs() - t0, { ...scenario.tags });
              return;
            }
            // As k6 (js/runner.go, Dialer.GetTrail): an iteration that threw ran to its end, so it
            // is counted in `iterations` and `iteration_duration`; only an interrupted one is not.
            registry.add('iterations', 1, { ...scenario.tags });
            registry.add('iteration_duration', clock.nowMs() - t0, { ...scenario.tags });
            counts.errors++;
            // Where in the script it was thrown (k6 prints the script's frame): the message says it.
            const at = e instanceof Error && e.stack ? userFrame(script.mapStack(e.stack), scriptPath) : null;
            const located = at && e instanceof Error ? Object.assign(new Error(`${e.message.split('\n')[0]} (at ${at})`), { stack: e.stack }) : e;
            noteError(scenario.name, located);
            this.emit('iteration-error', located);
          }
        };
        runs.push(
          startScenario(s, {
            clock,
            vus,
            runIteration: iterate,
            record: (metric, value, tags) => {
              if (metric === 'dropped_iterations') counts.dropped += value;
              registry.add(metric, value, tags);
            },
            signal: this.abortController.signal,
            env,
          }, testStartMs),
        );
      }
      loadStartMs = testStartMs;
      const plannedMs = Math.max(0, ...runs.map((r) => r.plannedMs));
      const plannedMax = maxPlannedVUs(options.scenarios, runs.map((r) => r.plannedMs));
      this.emit('start', { baseUrl, plannedMs, scenarios: options.scenarios.map((s) => s.name) });

      // The tick: telemetry into gauges, thresholds, progress.
      let lastReqs = 0;
      let lastTickMs = testStartMs;
      // Set when the scenarios are over: a tick still waiting on the server then must not report.
      let ended = false;
      const tick = async (final = false): Promise<void> => {
        await sampleTopology(baseUrl, admin, registry).catch((e: unknown) => this.noteAdminRefusal(admin, e));
        if (ended && !final) return;
        // k6 samples vus and vus_max once a second while the test runs, and not at its end, so
        // the gauge keeps the last value the test had (a run under a second has none).
        if (!final) {
          registry.add('vus', runs.reduce((n, r) => n + r.activeVUs(), 0), {});
          // k6 initialises the VUs its plan needs before the test starts (and arrival-rate VUs past
          // preAllocatedVUs as they are needed): vus_max is the larger of that plan and the VUs held.
          registry.add('vus_max', Math.max(vus.max(), plannedMax), {});
        }
        const now = clock.nowMs();
        const verdict = thresholds.evaluate(now - testRunStartMs);
        if (verdict.abort) this.abort('a threshold with abortOnFail failed');
        const reqs = registry.values('http_reqs').count ?? 0;
        const t: Tick = {
          elapsedMs: now - testStartMs,
          plannedMs,
          reqPerS: ((reqs - lastReqs) * 1000) / Math.max(1, now - lastTickMs),
          vus: vus.active(),
          errors: Math.round((registry.values('http_req_failed').passes ?? 0)) + counts.errors,
          dropped: counts.dropped,
          iterations: counts.completed,
        };
        lastReqs = reqs;
        lastTickMs = now;
        this.emit('tick', t);
      };
      const timer = setInterval(() => void tick(), cfg.tickMs ?? 1000);
      try {
        await Promise.all(runs.map((r) => r.done));
      } catch (e) {
        // An executor that ran out of its budget (or of VUs) is a reported failure, not a hang.
        this.abort('a scenario failed');
        throw new RunError(`a scenario failed: ${(e as Error).message}`, 107);
      } finally {
        clearInterval(timer);
      }
      ended = true;
      await tick(true);

      if (typeof mod.teardown === 'function') {
        try {
          const teardown = mod.teardown;
          await runLifecycle('teardown', () => teardown(data), options.teardownTimeoutMs);
        } catch (e) {
          this.emit('iteration-error', new Error(`teardown failed: ${(e as Error).message}`));
        }
      }
      // k6 records the bytes of every iteration's connections, 0 without any: data_sent and
      // data_received are in every summary of a run that iterated.
      if ((registry.values('iterations').count ?? 0) > 0) {
        for (const m of ['data_sent', 'data_received']) {
          if (!registry.info(m)) registry.define(m, 'counter', 'data');
          if ((registry.values(m).count ?? 0) === 0) registry.add(m, 0, {});
        }
      }
      const final = thresholds.evaluate(clock.nowMs() - testRunStartMs, { final: true });
      const topo = await getJson(`${baseUrl}/_sim/topology`, admin).catch((e: unknown) => (this.noteAdminRefusal(admin, e), null));
      // Utilisation peaks from when the load began: seeding in setup is not the topology's peak load.
      // After the queue settles (30 s at most), so every job's work is counted whole.
      const telemetry = await getJson(`${baseUrl}/_sim/telemetry?settleMs=30000${loadStartMs === null ? '' : `&utilisationFrom=${Math.floor(loadStartMs)}`}`, admin).catch((e: unknown) => {
        this.noteAdminRefusal(admin, e);
        if (!(e instanceof AdminRefused) && !cfg.target) this.emit('warning', `the topology telemetry could not be read (${(e as Error).message}): the result has no topology figures and no work.json`);
        return null;
      });
      const durationMs = clock.nowMs() - testStartMs;
      const testRunDurationMs = clock.nowMs() - testRunStartMs;
      const summaryDataDoc = summaryData(registry, final.results, checks.tree(), { testRunDurationMs, isStdOutTTY: Boolean(process.stdout.isTTY), isStdErrTTY: Boolean(process.stderr.isTTY) }, options.raw, data);
      // handleSummary runs in the script's context (its __ENV), as in k6.
      let summaryFiles: Record<string, unknown> | null = null;
      if (typeof mod.handleSummary === 'function') {
        try {
          summaryFiles = ((await mod.handleSummary(summaryDataDoc)) ?? {}) as Record<string, unknown>;
        } catch (e) {
          // As k6: logged, and the run goes on (the summary's files are not written).
          this.emit('warning', `handleSummary failed: ${(e as Error).message}`);
        }
      }
      // The server thread's own loop delay, known once it stops (everything has been read from it).
      const serverLoop = server ? await server.stop() : null;
      server = null;
      return {
        scenario: scenarioName(scriptPath),
        scriptPath,
        seed: cfg.seed,
        speed: cfg.speed,
        scale: cfg.scale,
        target: cfg.target ?? 'in-process',
        startedMs,
        loadStartedMs: loadStartMs,
        harness: {
          eventLoopDelayMs: { p50: round1(loopDelay.percentile(50) / 1e6), p99: round1(loopDelay.percentile(99) / 1e6), max: round1(loopDelay.max / 1e6) },
          server: cfg.target ? 'target' : serverLoop ? 'thread' : 'in-process',
          ...(cfg.backends ? { stack: 'real' as const } : {}),
          ...(serverLoop ? { serverEventLoopDelayMs: serverLoop } : {}),
        },
        durationMs,
        testRunDurationMs,
        options,
        thresholds: final.results,
        thresholdsFailed: final.failed,
        aborted: this.aborted,
        registry,
        checks,
        summary: summaryExport(registry, final.results, checks.tree(), { testRunDurationMs, options: options.raw, ...(hasSetup ? { setupData: data } : {}) }),
        summaryData: summaryDataDoc,
        topology: topo,
        telemetry,
        serverOpsAtLoadStart,
        summaryFiles,
        iterations: { completed: counts.completed, interrupted: counts.interrupted, dropped: counts.dropped, errors: counts.errors, errorMessages },
      };
    } finally {
      process.off('unhandledRejection', onUnhandled);
      jsonOut?.close();
      loopDelay.disable();
      await closeHttpClient(runtime).catch(() => undefined);
      Math.random = realRandom;
      setRuntime(null);
      await dashboard?.close();
      if (host) await host.close();
      if (server) await server.stop();
    }
  }
}

export function cfgEnv(cfg: Pick<RunConfig, 'speed' | 'scale' | 'seed'>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.SPEED = String(cfg.speed);
  env.SCALE = String(cfg.scale);
  env.SEED = String(cfg.seed);
  // Lets scripts tell Scalegram's runner from real k6 (scenarios/lib/telemetry.ts uses it).
  env.SCALEGRAM_RUNNER = '1';
  return env;
}

export function scenarioName(scriptPath: string): string {
  return scriptPath.split(/[\\/]/).pop()!.replace(/\.(ts|js|mjs)$/, '');
}

/** A port the kernel says is free now (the in-process server listens on it moments later). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The admin token the runner reads /_sim with, and whether the server refused it. */
interface AdminAccess {
  token: string | null;
  refused: boolean;
}

class AdminRefused extends Error {}

/** Operations per physical database server so far (`cluster/server` → ops), from /_sim/telemetry; null when unreadable. */
async function serverOps(baseUrl: string, admin: AdminAccess): Promise<Record<string, number> | null> {
  try {
    const t = (await getJson(`${baseUrl}/_sim/telemetry`, admin)) as { hotspots?: { clusters?: Array<{ cluster: string; servers: Array<{ name: string; ops: number }> }> } } | null;
    const out: Record<string, number> = {};
    for (const c of t?.hotspots?.clusters ?? []) for (const s of c.servers) out[`${c.cluster}/${s.name}`] = s.ops;
    return out;
  } catch {
    return null;
  }
}

async function getJson(url: string, admin: AdminAccess): Promise<unknown> {
  const res = await fetch(url, admin.token ? { headers: { authorization: `Bearer ${admin.token}` } } : {});
  if (res.status === 401) throw new AdminRefused(`${url}: 401`);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.json();
}

async function sampleTopology(baseUrl: string, admin: AdminAccess, registry: MetricRegistry): Promise<void> {
  if (admin.refused) return;
  const scalars = (await getJson(`${baseUrl}/_sim/scalars`, admin)) as Record<string, number | null>;
  for (const g of TOPOLOGY_METRICS) {
    const v = scalars[g];
    if (typeof v === 'number' && Number.isFinite(v)) registry.add(g, v, {});
  }
}

function round1(ms: number): number {
  return Number.isFinite(ms) ? Math.round(ms * 10) / 10 : 0;
}
