// `scalegram run <scenario>`: replays a scenario, showing a live progress line, then prints the
// end-of-run summary and writes the result directory. Exit codes follow k6: 99 thresholds failed,
// 104 bad options, 107 script error, 108 aborted by the script.

import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DEFAULT_PRESET, PRESETS } from '../sim/topology-config.ts';
import { formatValue } from '../scenarios/runner/format.ts';
import { droppedShare, DROPPED_SHARE_WARNING } from '../scenarios/runner/key-figures.ts';
import { DEFAULT_OUT_ROOT, defaultOutDir, writeResults } from '../scenarios/runner/results.ts';
import { RunError, RunHandle, type Tick } from '../scenarios/runner/run.ts';
import { OptionsError, parseStages, shortcutsFromEnv, type ShortcutLayer } from '../scenarios/runner/options.ts';
import { summaryText } from '../scenarios/runner/summary-text.ts';
import { writeReports } from '../reports/index.ts';
import { DEFAULT_REDIS_URL, type RealStack } from '../sim/backends/probe.ts';
import { DEFAULT_STACK_DIR } from '../sim/backends/local-stack.ts';
import { chooseRealStack } from './real-stack.ts';
import { envOption, intOption, parse, positiveNumber, scenarioFile, seedOption } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram run <scenario.ts> [options]

Replays a scenario written in k6's dialect. Without --target it builds the topology, serves the
photo service on a free port from a worker thread of its own (so the load generator and the server
do not share one event loop; each loop's delay is recorded), and runs the scenario against it.

Options:
  --target URL             run against an already running server instead
  --stack S                embedded (default: everything in process) or real: the server the run builds keeps
                           its feed lists on Redis ($REDIS_URL, else ${DEFAULT_REDIS_URL}) and its jobs on
                           RabbitMQ ($AMQP_URL, else amqp://guest:…@127.0.0.1:5672), its cache on memcached
                           ($MEMCACHED_SERVERS, one host:port per node, else a memcached process per node that
                           the run starts and stops), its store on the stack's Postgres servers (else
                           $POSTGRES_SERVERS, else embedded).
                           With a stack up (scalegram stack up; --stack-dir, default ${DEFAULT_STACK_DIR}), its
                           parts and its topology file (unless --topology). Exit 69 when one does not answer
  --stack-dir DIR          with --stack real: the stack scalegram stack up started in DIR
  --in-process             serve the topology in the runner's own thread (for debugging: one event
                           loop for both, as before; latencies then include the runner's queueing)
  --topology T             preset (${Object.keys(PRESETS).join(', ')}) or JSON file (default ${DEFAULT_PRESET})
  --speed N                time compression: 12 hours at --speed 720 take one minute (default 1)
  --scale F                population and rates scaled by F (default 1)
  --seed N                 seed for the population, the server and the script's Math.random (default: random, printed)
  --out json=FILE          also write every sample as k6's JSON output (k6 run --out json=FILE)
  --out DIR                result directory (default reports/out/<scenario>-<timestamp>/): result.json,
                           summary.json, work.json (the work each route did), report.md/html, junit.xml
  --summary-export FILE    also write the k6-shaped summary JSON to FILE
  -u, --vus N              k6's shortcuts: they override the script's options as k6's flags do; any of
  -d, --duration D         --duration, --iterations and --stage replaces the script's scenarios (and
  -i, --iterations N       its duration, iterations and stages) with k6's default scenario. The
  -s, --stage D:T          environment's K6_VUS, K6_DURATION, K6_ITERATIONS and K6_STAGES (30s:10,1m:0)
                           do the same, below the flags. --stage is repeatable.
  --no-thresholds          do not evaluate the script's thresholds (as k6's flag: none is reported, none fails)
  -e, --env KEY=VALUE      set __ENV.KEY (repeatable)
  --dashboard              serve the live teaching dashboard of the server under test while the run lasts
                           (loopback; its URL, with its key, is printed; with --target give -e ADMIN_TOKEN)
  --dashboard-port N       the dashboard's port (default: a free one)
  -q, --quiet              no progress line
  -h, --help               show this help

Exit codes: 0 ok, 2 bad usage, 69 a real backend did not answer (--stack real), 99 thresholds failed, 104 invalid options, 105 interrupted, 107 script error, 108 aborted by the script.
`;

export function progressLine(t: Tick): string {
  const secs = (ms: number) => (ms / 1000).toFixed(0).padStart(4) + 's';
  const pct = t.plannedMs > 0 ? Math.min(100, (100 * t.elapsedMs) / t.plannedMs).toFixed(0).padStart(3) + '%' : '';
  return `running ${secs(t.elapsedMs)} / ${secs(t.plannedMs)} ${pct}  ${t.reqPerS.toFixed(0).padStart(6)} req/s  ${String(t.vus).padStart(4)} VUs  ${t.errors} errors  ${t.dropped} dropped  ${t.iterations} iterations`;
}

/** What a caller of runCommand (the demo) learns once the result directory is written. */
export interface RunHooks {
  onWritten?(outDir: string, reports: string[]): void;
}

export async function runCommand(argv: string[], hooks: RunHooks = {}): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      target: { type: 'string' },
      'in-process': { type: 'boolean' },
      stack: { type: 'string' },
      'stack-dir': { type: 'string' },
      topology: { type: 'string' },
      speed: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string', multiple: true },
      'summary-export': { type: 'string' },
      'no-thresholds': { type: 'boolean' },
      vus: { type: 'string', short: 'u' },
      duration: { type: 'string', short: 'd' },
      iterations: { type: 'string', short: 'i' },
      stage: { type: 'string', short: 's', multiple: true },
      env: { type: 'string', short: 'e', multiple: true },
      quiet: { type: 'boolean', short: 'q' },
      dashboard: { type: 'boolean' },
      'dashboard-port': { type: 'string' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const scriptPath = scenarioFile(positionals);
  const env = envOption(values.env ?? []);
  // --out is repeatable, as k6's: json=FILE is k6's JSON output; a plain path is the result directory.
  let outDirOption: string | undefined;
  let jsonOut: string | undefined;
  for (const o of values.out ?? []) {
    const m = /^([a-z][a-z0-9-]*)=(.*)$/.exec(o);
    if (m && m[1] === 'json') {
      if (!m[2]) throw new UsageError('--out json=FILE needs a file name');
      if (jsonOut !== undefined) throw new UsageError('--out json=FILE may be given once');
      jsonOut = m[2];
    } else if (m) {
      throw new UsageError(`--out ${o}: of k6's outputs Scalegram writes json=FILE only (the result directory holds the time series and the summary)`);
    } else {
      if (outDirOption !== undefined) throw new UsageError('--out DIR (the result directory) may be given once');
      outDirOption = o;
    }
  }
  if (jsonOut !== undefined) {
    // Refused now, not after the run: a file that cannot be written would lose the samples.
    try {
      closeSync(openSync(jsonOut, 'a'));
    } catch (e) {
      throw new UsageError(`--out json=${jsonOut}: cannot write there (${(e as Error).message})`);
    }
  }
  if (values.target && values['in-process']) throw new UsageError('--in-process and --target exclude each other: a --target server runs where it was started');
  if (values.target && values.topology) process.stderr.write('scalegram run: --topology is ignored with --target (the running server has its own topology)\n');
  const stack = values.stack ?? 'embedded';
  if (stack !== 'embedded' && stack !== 'real') throw new UsageError(`--stack ${stack}: embedded or real`);
  if (stack === 'real' && values.target) throw new UsageError('--stack real and --target exclude each other: a --target server runs on the parts it was started with');
  if (values['stack-dir'] !== undefined && stack !== 'real') throw new UsageError('--stack-dir goes with --stack real');
  let backends: RealStack | undefined;
  let stackTopology: string | undefined;
  if (stack === 'real') {
    const chosen = await chooseRealStack('run', values['stack-dir'], values.topology !== undefined);
    if (typeof chosen === 'string') {
      process.stderr.write(`scalegram run: ${chosen}\n`);
      return EXIT.UNAVAILABLE;
    }
    backends = chosen.backends;
    stackTopology = chosen.topologyFile;
  }
  const seed = seedOption(values.seed);
  const cliLayer: ShortcutLayer = {};
  if (values.vus !== undefined) cliLayer.vus = intOption(values.vus, 'vus', 0);
  if (values.iterations !== undefined) cliLayer.iterations = intOption(values.iterations, 'iterations', 0);
  if (values.duration !== undefined) cliLayer.duration = values.duration;
  if (values.stage) {
    try {
      cliLayer.stages = values.stage.flatMap((st) => parseStages(st, '--stage'));
    } catch (e) {
      if (e instanceof OptionsError) throw new UsageError(e.message);
      throw e;
    }
  }
  let envLayer: ShortcutLayer;
  try {
    envLayer = shortcutsFromEnv(process.env);
  } catch (e) {
    if (e instanceof OptionsError) {
      process.stderr.write(`scalegram run: invalid options: ${e.message}\n`);
      return EXIT.INVALID_CONFIG;
    }
    throw e;
  }
  if (values['dashboard-port'] !== undefined && !values.dashboard) throw new UsageError('--dashboard-port goes with --dashboard');
  const dashboardPort = intOption(values['dashboard-port'], 'dashboard-port', 0, 0, 65535);
  const handle = new RunHandle({
    scriptPath,
    ...(values.target ? { target: values.target } : {}),
    ...(values['in-process'] ? { inProcess: true } : {}),
    ...(backends ? { backends } : {}),
    ...(values.topology ? { topology: values.topology } : stackTopology ? { topology: stackTopology } : {}),
    speed: positiveNumber(values.speed, 'speed', 1),
    scale: positiveNumber(values.scale, 'scale', 1),
    seed,
    env,
    ...(values['no-thresholds'] ? { noThresholds: true } : {}),
    shortcuts: [envLayer, cliLayer],
    ...(jsonOut !== undefined ? { jsonOut } : {}),
    ...(values.dashboard ? { dashboard: { port: dashboardPort } } : {}),
  });
  const tty = process.stderr.isTTY;
  let lastPrinted = 0;
  handle.on('start', (s: { baseUrl: string; plannedMs: number; scenarios: string[] }) => {
    process.stderr.write(`scalegram run: ${positionals[0]} against ${s.baseUrl} (seed ${seed}, speed ${handle.config.speed}, scale ${handle.config.scale}); scenarios: ${s.scenarios.join(', ')}\n`);
  });
  handle.on('tick', (t: Tick) => {
    if (values.quiet) return;
    if (tty) process.stderr.write('\r' + progressLine(t) + '\x1b[K');
    else if (t.elapsedMs - lastPrinted >= 5000) {
      lastPrinted = t.elapsedMs;
      process.stderr.write(progressLine(t) + '\n');
    }
  });
  let firstErrors = 0;
  handle.on('iteration-error', (e: unknown) => {
    if (firstErrors++ < 5) process.stderr.write(`${tty ? '\n' : ''}iteration error: ${(e as Error).message ?? String(e)}\n`);
  });
  handle.on('dashboard', (d: { url: string }) => process.stderr.write(`scalegram run: dashboard ${d.url}  (open it in a browser on this machine; it closes when the run ends)\n`));
  handle.on('warning', (message: string) => process.stderr.write(`${tty ? '\n' : ''}scalegram run: ${message}\n`));
  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    handle.abort('interrupted (SIGINT)');
  });

  let result;
  try {
    result = await handle.run();
  } catch (e) {
    if (e instanceof RunError) {
      process.stderr.write(`${tty ? '\n' : ''}scalegram run: ${e.message}\n`);
      // k6 writes --summary-export when setup threw too.
      if (e.summary && values['summary-export']) {
        mkdirSync(dirname(resolve(values['summary-export'])), { recursive: true });
        writeFileSync(values['summary-export'], JSON.stringify(e.summary, null, 2));
      }
      return e.exitCode;
    }
    throw e;
  }
  if (tty && !values.quiet) process.stderr.write('\n');
  const outDir = outDirOption ? writeResults(result, outDirOption, values['summary-export']) : writeResults(result, defaultOutDir(result), values['summary-export'], DEFAULT_OUT_ROOT);
  // The reports are made from the result.json just written; failing to make them loses no result.
  let reports: string[] = [];
  try {
    reports = writeReports(outDir);
  } catch (e) {
    process.stderr.write(`scalegram run: the reports could not be written (rerun "scalegram report ${outDir}"): ${(e as Error).message}\n`);
  }
  if (result.summaryFiles) {
    // handleSummary(data) returns { path: content }; 'stdout' and 'stderr' print instead.
    for (const [path, content] of Object.entries(result.summaryFiles)) {
      const text = typeof content === 'string' ? content : JSON.stringify(content, null, 2);
      if (path === 'stdout') process.stdout.write(text);
      else if (path === 'stderr') process.stderr.write(text);
      else writeFileSync(path, text);
    }
  } else {
    process.stdout.write(summaryText(result));
  }
  // With a handleSummary, stdout is the script's (as under k6): Scalegram's own lines go to stderr.
  const own = result.summaryFiles ? process.stderr : process.stdout;
  // The same share, and the same words for it, as the summary's iterations line and the report.
  const dropped = droppedShare(result.iterations);
  if (dropped > DROPPED_SHARE_WARNING) {
    own.write(
      `\nwarning: ${formatValue(dropped, 'ratio')} of planned iterations were dropped: the offered load ` +
        `(rates × --speed ${handle.config.speed} × --scale ${handle.config.scale}) exceeded what the VUs and this machine could start on time. ` +
        'The figures describe the load actually served; lower --speed or --scale, or raise maxVUs, to serve the whole plan.\n',
    );
  }
  own.write(`\nresults: ${outDir}\n`);
  for (const p of reports.filter((f) => f.endsWith('.html'))) own.write(`report:  ${p}\n`);
  hooks.onWritten?.(outDir, reports);
  if (interrupted) return EXIT.INTERRUPTED;
  if (result.thresholdsFailed) return EXIT.THRESHOLDS;
  return result.aborted ? EXIT.ABORTED : EXIT.OK;
}
