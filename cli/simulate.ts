// `scalegram simulate <scenario>`: replays the scenario's growth event at full scale in virtual
// time (no HTTP, no wall clock), then writes the same result directory as `scalegram run` —
// result.json marked as simulated, summary.json, report.md, report.html, junit.xml — prints the
// summary and the findings, and exits as a run does (99 when a threshold failed).

import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { findings, writeReports } from '../reports/index.ts';
import { DEFAULT_OUT_ROOT, writeWork } from '../scenarios/runner/results.ts';
import { RunError } from '../scenarios/runner/run.ts';
import { resultSummaryText } from '../scenarios/runner/summary-text.ts';
import { simulateRun } from '../scenarios/runner/virtual-run.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { calibrationOverrides, calibrationWarnings, loadCalibration } from '../sim/calibration.ts';
import { DEFAULT_PRESET, loadTopology, PRESETS, type TopologyInput } from '../sim/topology-config.ts';
import { CALIBRATION_WARNED, hereFor } from './host.ts';
import { envOption, intOption, parse, positiveNumber, scenarioFile, seedOption } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { listenErrorMessage } from './listen.ts';
import { UsageError } from './usage-error.ts';
import { startDashboard, type Dashboard } from '../dashboard/server.ts';
import { SimulationSource } from '../dashboard/sim-source.ts';
import { MAX_NUMERIC_SPEED, MIN_SPEED, VirtualPacer, type PaceSpeed, type PacerState } from '../scenarios/runner/virtual-pacer.ts';
import type { SimulationView } from '../scenarios/runner/virtual-run.ts';

const HELP = `Usage: scalegram simulate <scenario.ts> [options]

Replays the scenario's growth event at full scale in virtual time: the whole 2012 topology as
queues with the capacities of its config (app servers, pgbouncer pools, Postgres primaries and
replicas, memcached on the ketama ring, Redis, the job workers), driven by the scenario's k6 options
and its declared work. No HTTP, no wall clock: the Android launch's 12 hours at full scale take
about 7½ minutes on a 2-core machine (--scale 0.1: about 30 s).
Writes the same result directory as "scalegram run", marked as simulated.

Options:
  --topology T             preset (${Object.keys(PRESETS).join(', ')}) or JSON file (default: the script's, else ${DEFAULT_PRESET})
  --scale F                population and rates scaled by F, never capacities or thresholds (default 1: full scale)
  --seed N                 seed of the population and every choice (default: random, printed)
  --cold                   start with empty caches (as after a restart) instead of the warm steady state
  --calibration FILE       model this machine instead of 2012's hardware: the costs "scalegram calibrate"
                           measured (calibration/this-machine.json is this repository's); a profile from
                           another machine or commit is used with a warning
  --speed N                time compression as "scalegram run --speed N" applies it: durations and sleeps
                           ÷ N, rates × N (default 1; "scalegram validate" uses it to match a live run)
  --out DIR                result directory (default reports/out/<scenario>-sim-<timestamp>/)
  --summary-export FILE    also write the k6-shaped summary JSON to FILE
  -e, --env KEY=VALUE      set __ENV.KEY (repeatable)
  --dashboard              serve the teaching dashboard (loopback) and print its URL with its key: the
                           simulation is paced against the clock, and the page pauses, steps (1 s, 1 min,
                           1 h of virtual time), sets the speed and takes actions at the current virtual
                           time; after the end it stays open until Ctrl-C
  --dashboard-port N       the dashboard's port (default: a free one)
  --dashboard-speed N|max  virtual seconds per real second to start at, from 0.01 (default 1: real time;
                           max: as fast as the simulator goes)
  --paused                 start paused (press play on the page)
  -q, --quiet              no progress line
  -h, --help               show this help

Exit codes: 0 ok, 2 bad usage, 99 thresholds failed, 104 invalid options, declarations or calibration profile,
105 interrupted (--dashboard: Ctrl-C before the end; the result so far is written), 107 script error.
`;

/** hh:mm:ss of virtual time since the start. */
export function virtualClock(ms: number): string {
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

export function simulateProgressLine(p: { virtualMs: number; events: number; plannedMs: number; wallMs: number }): string {
  const pct = p.plannedMs > 0 ? Math.min(100, (100 * p.virtualMs) / p.plannedMs).toFixed(0).padStart(3) + '%' : '';
  const rate = p.wallMs > 0 ? (p.events / (p.wallMs / 1000) / 1e6).toFixed(2) : '–';
  return `simulating ${virtualClock(p.virtualMs)} / ${virtualClock(p.plannedMs)} virtual ${pct}  ${(p.events / 1e6).toFixed(1)}M events  ${rate}M events/s`;
}

export interface SimulateHooks {
  onWritten?(outDir: string, reports: string[], findings: string[]): void;
  /** With --dashboard: its URL (with the key) and the pacer, once it listens. */
  onDashboard?(url: string, pacer: VirtualPacer): void;
  /** With --dashboard: what the end waits for before closing the page (default: SIGINT or SIGTERM). */
  hold?: Promise<void>;
}

/** The dashboard's clock as one progress line. */
export function pacerLine(s: PacerState): string {
  const speed = s.speed === 'max' ? 'full speed' : `${s.speed}×`;
  const max = s.maxSpeed === null ? '' : ` (simulator ${s.maxSpeedAtLeast ? '≥' : '≈'} ${Math.round(s.maxSpeed).toLocaleString('en-US')}× real time)`;
  return `simulating ${virtualClock(s.nowMs)} / ${virtualClock(s.horizonMs)} virtual · ${s.done ? 'done' : s.paused ? 'paused' : speed}${s.behind ? ', behind' : ''}${max} · ${(s.events / 1e6).toFixed(1)}M events`;
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

export async function simulateCommand(argv: string[], hooks: SimulateHooks = {}): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      topology: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      'summary-export': { type: 'string' },
      cold: { type: 'boolean' },
      calibration: { type: 'string' },
      speed: { type: 'string' },
      env: { type: 'string', short: 'e', multiple: true },
      quiet: { type: 'boolean', short: 'q' },
      dashboard: { type: 'boolean' },
      'dashboard-port': { type: 'string' },
      'dashboard-speed': { type: 'string' },
      paused: { type: 'boolean' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const scriptPath = scenarioFile(positionals);
  const env = envOption(values.env ?? []);
  const seed = seedOption(values.seed);
  const scale = positiveNumber(values.scale, 'scale', 1);
  const speed = positiveNumber(values.speed, 'speed', 1);
  for (const flag of ['dashboard-port', 'dashboard-speed', 'paused'] as const) if (values[flag] !== undefined && !values.dashboard) throw new UsageError(`--${flag} goes with --dashboard`);
  const dashboardPort = intOption(values['dashboard-port'], 'dashboard-port', 0, 0, 65535);
  const givenPace = values['dashboard-speed'];
  const pace: PaceSpeed = givenPace === 'max' ? 'max' : givenPace === undefined ? 1 : Number(givenPace);
  if (pace !== 'max' && !(Number.isFinite(pace) && pace >= MIN_SPEED && pace <= MAX_NUMERIC_SPEED)) throw new UsageError(`--dashboard-speed must be a number of virtual seconds per real second from ${MIN_SPEED} to ${MAX_NUMERIC_SPEED}, or "max" (got "${givenPace}")`);
  // A port that is taken is said now, not after the model is built (a minute at full scale).
  if (values.dashboard && dashboardPort !== 0) await portFree(dashboardPort);
  const pacer = values.dashboard ? new VirtualPacer({ speed: pace, paused: values.paused ?? false }) : null;
  // Ctrl-C before the end ends the simulation where it is: the result so far is written, marked as aborted (exit 105, as k6's).
  let interrupted = false;
  const interrupt = (signal: string) => {
    interrupted = true;
    process.stderr.write(`\nscalegram simulate: ${signal}: ending the simulation at ${virtualClock(pacer!.state().nowMs)} of virtual time; writing the result so far\n`);
    pacer!.stop(`interrupted (${signal})`);
  };
  if (pacer) {
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
  }
  let dashboard: Dashboard | null = null;
  let statusTimer: NodeJS.Timeout | null = null;
  let overrides: TopologyInput | undefined;
  if (values.calibration !== undefined) {
    try {
      const profile = loadCalibration(values.calibration);
      // validate checks its profile and warns once itself, then runs this with CALIBRATION_WARNED set.
      if (process.env[CALIBRATION_WARNED] !== '1') for (const w of calibrationWarnings(profile, hereFor(profile.commit.sha))) process.stderr.write(`scalegram simulate: warning: ${w}\n`);
      overrides = calibrationOverrides(profile);
    } catch (e) {
      if (!isSimError(e, 'SG_ERR_CALIBRATION_INVALID')) throw e;
      process.stderr.write(`scalegram simulate: ${e.message} [${e.code}]\n`);
      return EXIT.INVALID_CONFIG;
    }
  }
  if (values.topology) {
    // A bad --topology is reported before the banner, like every other bad option.
    try {
      loadTopology(values.topology);
    } catch (e) {
      if (!isSimError(e)) throw e;
      process.stderr.write(`scalegram simulate: ${e.message}\n`);
      return EXIT.INVALID_CONFIG;
    }
  }
  const tty = process.stderr.isTTY;
  process.stderr.write(`scalegram simulate: ${positionals[0]} in virtual time (seed ${seed}, scale ${scale}${speed !== 1 ? `, speed ${speed}` : ''}${values.cold ? ', cold caches' : ''}${values.calibration ? `, calibration ${values.calibration}` : ''})\n`);
  const wallStart = Date.now();
  let lastPrinted = 0;
  let result;
  try {
    result = await simulateRun({
      ...(pacer
        ? {
            pacer,
            onModel: async (view: SimulationView) => {
              try {
                dashboard = await startDashboard({ source: new SimulationSource(view, pacer), port: dashboardPort });
              } catch (err) {
                throw new UsageError(listenErrorMessage(err, '127.0.0.1', dashboardPort, '--dashboard-port') ?? `the dashboard could not start: ${(err as Error).message}`);
              }
              process.stderr.write(`scalegram simulate: dashboard ${dashboard.url}\n  (open it in a browser on this machine; ${pacer.state().paused ? 'paused: press play' : `running at ${pace === 'max' ? 'full speed' : `${pace}× real time`}`}; space pauses, 1 2 3 step 1 s, 1 min, 1 h)\n`);
              hooks.onDashboard?.(dashboard.url, pacer);
              let last = '';
              if (!values.quiet) statusTimer = setInterval(() => {
                const line = pacerLine(pacer.state());
                // Without a terminal, a line only when the clock has moved.
                const moved = line.replace(/\(simulator[^)]*\)/, '') !== last;
                last = line.replace(/\(simulator[^)]*\)/, '');
                if (tty) process.stderr.write('\r' + line + '\x1b[K');
                else if (moved) process.stderr.write(line + '\n');
              }, tty ? 1000 : 5000);
            },
          }
        : {}),
      scriptPath,
      ...(values.topology ? { topology: values.topology } : {}),
      seed,
      scale,
      speed,
      env,
      ...(overrides ? { overrides } : {}),
      ...(values.cold ? { cold: true } : {}),
      onProgress: (p) => {
        if (values.quiet) return;
        const wallMs = Date.now() - wallStart;
        const line = simulateProgressLine({ ...p, wallMs });
        if (tty) process.stderr.write('\r' + line + '\x1b[K');
        else if (wallMs - lastPrinted >= 5000) {
          lastPrinted = wallMs;
          process.stderr.write(line + '\n');
        }
      },
    });
  } catch (e) {
    if (statusTimer) clearInterval(statusTimer);
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await (dashboard as Dashboard | null)?.close();
    if (e instanceof RunError) {
      process.stderr.write(`${tty ? '\n' : ''}scalegram simulate: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
  if (statusTimer) clearInterval(statusTimer);
  process.off('SIGINT', interrupt);
  process.off('SIGTERM', interrupt);
  if (tty && !values.quiet) process.stderr.write('\n');
  const { doc } = result;
  const stamp = doc.startedAt.replace(/[:.]/g, '-');
  const outDir = resolve(values.out ?? join(DEFAULT_OUT_ROOT, `${doc.scenario}-sim-${stamp}`));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'result.json'), JSON.stringify(doc));
  writeFileSync(join(outDir, 'summary.json'), JSON.stringify(result.summary, null, 2));
  writeWork(outDir, doc, { simulated: true });
  if (values['summary-export']) {
    mkdirSync(dirname(resolve(values['summary-export'])), { recursive: true });
    writeFileSync(values['summary-export'], JSON.stringify(result.summary, null, 2));
  }
  if (!values.out) {
    const latest = join(resolve(DEFAULT_OUT_ROOT), 'latest');
    try {
      rmSync(latest, { force: true });
      symlinkSync(outDir, latest);
    } catch {
      // Without symlinks only the shortcut is missing.
    }
  }
  let reports: string[] = [];
  try {
    reports = writeReports(outDir);
  } catch (e) {
    process.stderr.write(`scalegram simulate: the reports could not be written (rerun "scalegram report ${outDir}"): ${(e as Error).message}\n`);
  }
  process.stdout.write(resultSummaryText(doc));
  const found = findings(doc);
  const w = doc.simulation.wall;
  process.stdout.write(`\nsimulated ${(doc.durationMs / 3_600_000).toFixed(doc.durationMs >= 3_600_000 ? 1 : 2)} h of virtual time in ${(w.ms / 1000).toFixed(1)} s: ${(doc.simulation.events / 1e6).toFixed(1)}M events, ${(w.eventsPerS / 1e6).toFixed(2)}M events/s, peak RSS ${(w.peakRssBytes / 2 ** 20).toFixed(0)} MiB\n`);
  process.stdout.write(`\nresults: ${outDir}\n`);
  for (const p of reports.filter((f) => f.endsWith('.html'))) process.stdout.write(`report:  ${p}\n`);
  hooks.onWritten?.(outDir, reports, found);
  const open = dashboard as Dashboard | null;
  if (open && interrupted) {
    await open.close();
    return EXIT.INTERRUPTED;
  }
  if (open) {
    // The end stays on the page for the discussion, until the teacher closes it.
    process.stderr.write(`scalegram simulate: the simulation is over; the dashboard stays open at ${open.url.replace(/\?key=.*/, '')} until Ctrl-C\n`);
    await (hooks.hold ?? untilSignal());
    await open.close();
  }
  return result.thresholdsFailed ? EXIT.THRESHOLDS : EXIT.OK;
}

/** Refuses a --dashboard-port that is taken (or not this machine's) before the long work begins. */
async function portFree(port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err) => reject(new UsageError(listenErrorMessage(err, '127.0.0.1', port, '--dashboard-port') ?? `the dashboard cannot listen on 127.0.0.1:${port}: ${(err as Error).message}`)));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}
