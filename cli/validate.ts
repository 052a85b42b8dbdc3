// `scalegram validate <scenario>`: runs the scenario live (`scalegram run`, the server in its own
// thread) and simulated (`scalegram simulate` with a calibration profile of this machine, at the
// same --speed, --scale and seed), then judges the simulation against the live run figure by figure
// (reports/validate.ts) and writes validate.json, validate.md and validate.html.
// Each run is a child process, as sweep's points are: a scenario module loads once per process.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadResult } from '../reports/load-result.ts';
import { validation, validationFiles, validationMarkdown } from '../reports/validate.ts';
import { DEFAULT_OUT_ROOT } from '../scenarios/runner/results.ts';
import { RunError, scenarioName } from '../scenarios/runner/run.ts';
import { calibrationWarnings, loadCalibration, sameMachine, type Calibration } from '../sim/calibration.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { DEFAULT_PRESET, loadTopology, PRESETS } from '../sim/topology-config.ts';
import { envOption, parse, positiveNumber, scenarioFile, seedOption } from './args.ts';
import { calibrate, calibrationText, DEFAULT_CALIBRATION_SEED, DEFAULT_PROFILE } from './calibrate.ts';
import { EXIT } from './exit-codes.ts';
import { CALIBRATION_WARNED, commitIdentity, hereFor, machineIdentity } from './host.ts';
import { UsageError } from './usage-error.ts';

const BIN = fileURLToPath(new URL('../bin/scalegram.mjs', import.meta.url));

const HELP = `Usage: scalegram validate <scenario.ts> [options]

Runs the scenario twice with one seed — live ("scalegram run": the real service, its server in a
thread of its own) and simulated ("scalegram simulate --cold --calibration": the model, with the
costs measured on this machine, its caches empty at the start as the live run's are) — and compares them side by side: per-route p50 and p99 (within 15%),
operations per physical database server (within 5%), cache hit ratio (within 2 points), fan-out
delivery lag p50 (within 15%) and deliveries per second (within 10%), each marked pass or fail.
Choose --scale and --speed so that neither event loop saturates: a saturated live run measures
the harness, not the service, and the verdict says so.

The calibration is always one of this machine: --calibration FILE, else the repository's
calibration/this-machine.json when it was measured on this machine (same host, CPU, cores and
Node), else one measured first ("scalegram calibrate", about a minute) into the result directory.

Writes validate.json, validate.md and validate.html, and the two runs (live/, simulated/), in the
result directory, and prints the table.

Options:
  --scale F                population and rates scaled by F, in both runs (default 1)
  --speed N                time compression, in both runs (default 1)
  --seed N                 seed of both runs (default: random, printed)
  --topology T             preset (${Object.keys(PRESETS).join(', ')}) or JSON file (default: the script's, else ${DEFAULT_PRESET})
  --calibration FILE       the calibration profile to simulate with (see above)
  --recalibrate            measure a new profile of this machine even if one is there
  --out DIR                result directory (default reports/out/<scenario>-validate-<timestamp>/)
  -e, --env KEY=VALUE      set __ENV.KEY in both runs (repeatable)
  -q, --quiet              no progress lines from the runs
  -h, --help               show this help

Exit codes: 0 every figure within tolerance; 1 a figure outside it, or a live run not valid for
conclusions (saturated, mostly dropped or failed); 2 bad usage; 104 invalid topology, options or
calibration profile; 107 script error (as run and simulate).
`;

/** Runs `scalegram <args>` as a child; stderr (progress) passes through, stdout is dropped. */
function scalegram(args: string[], quiet: boolean, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', quiet ? 'pipe' : 'inherit'], env });
    let err = '';
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.length > 20_000) err = err.slice(-10_000);
    });
    child.on('error', fail);
    child.on('close', (code) => {
      if (quiet && code !== 0 && code !== EXIT.THRESHOLDS) process.stderr.write(err);
      done(code ?? 1);
    });
  });
}

export async function validateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      scale: { type: 'string' },
      speed: { type: 'string' },
      seed: { type: 'string' },
      topology: { type: 'string' },
      calibration: { type: 'string' },
      recalibrate: { type: 'boolean' },
      out: { type: 'string' },
      env: { type: 'string', short: 'e', multiple: true },
      quiet: { type: 'boolean', short: 'q' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const scriptPath = scenarioFile(positionals);
  if (values.calibration !== undefined && values.recalibrate) throw new UsageError('--calibration and --recalibrate exclude each other');
  const env = envOption(values.env ?? []);
  const seed = seedOption(values.seed);
  const scale = positiveNumber(values.scale, 'scale', 1);
  const speed = positiveNumber(values.speed, 'speed', 1);
  if (values.topology) loadTopology(values.topology); // a bad one is exit 104 before anything runs
  const say = (line: string) => values.quiet || process.stderr.write(line + '\n');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = resolve(values.out ?? join(DEFAULT_OUT_ROOT, `${scenarioName(scriptPath)}-validate-${stamp}`));
  const here = { machine: machineIdentity(), commit: commitIdentity() };

  // The calibration: this machine's, always.
  let profileFile: string;
  let how: string;
  let profile: Calibration;
  try {
    if (values.calibration !== undefined) {
      profileFile = resolve(values.calibration);
      profile = loadCalibration(profileFile);
      how = 'given with --calibration';
    } else {
      const shipped = !values.recalibrate && existsSync(DEFAULT_PROFILE) ? loadCalibration(DEFAULT_PROFILE) : null;
      if (shipped && sameMachine(shipped.machine, here.machine)) {
        profileFile = DEFAULT_PROFILE;
        profile = shipped;
        how = "the repository's, measured on this machine";
      } else {
        say(`scalegram validate: ${values.recalibrate ? '--recalibrate' : shipped ? `the repository's profile was measured on ${shipped.machine.hostname} (${shipped.machine.cpuModel}), not here` : 'no calibration profile of this machine'}: measuring one first`);
        profile = await calibrate({ seed: DEFAULT_CALIBRATION_SEED, iterations: 300, onProgress: say, ...(values.topology ? { topology: values.topology } : {}) });
        profileFile = join(outDir, 'calibration.json');
        mkdirSync(outDir, { recursive: true });
        writeFileSync(profileFile, JSON.stringify(profile, null, 2) + '\n');
        if (!values.quiet) process.stderr.write(calibrationText(profile));
        how = 'measured for this validation';
      }
    }
  } catch (e) {
    if (isSimError(e, 'SG_ERR_CALIBRATION_INVALID')) {
      process.stderr.write(`scalegram validate: ${e.message} [${e.code}]\n`);
      return EXIT.INVALID_CONFIG;
    }
    if (e instanceof RunError) {
      process.stderr.write(`scalegram validate: calibrating: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
  for (const w of calibrationWarnings(profile, { ...hereFor(profile.commit.sha), commit: here.commit })) process.stderr.write(`scalegram validate: warning: ${w}\n`);
  // Made once the profile is known to be usable: a refused one leaves no empty result directory.
  mkdirSync(outDir, { recursive: true });

  const common = [scriptPath, '--seed', String(seed), '--scale', String(scale), '--speed', String(speed), ...(values.topology ? ['--topology', values.topology] : []), ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), ...(values.quiet ? ['-q'] : [])];
  const liveDir = join(outDir, 'live');
  const simDir = join(outDir, 'simulated');
  say(`scalegram validate: 1/2 live: scalegram run ${relative(process.cwd(), scriptPath)} (seed ${seed}, scale ${scale}, speed ${speed})`);
  const liveCode = await scalegram(['run', ...common, '--no-thresholds', '--out', liveDir], Boolean(values.quiet));
  if (liveCode !== EXIT.OK && liveCode !== EXIT.THRESHOLDS) {
    process.stderr.write(`scalegram validate: the live run failed (exit ${liveCode})\n`);
    return liveCode;
  }
  say(`scalegram validate: 2/2 simulated: scalegram simulate ${relative(process.cwd(), scriptPath)} --cold --calibration ${relative(process.cwd(), profileFile)}`);
  // The profile was checked above: a warning about it is said once, by validate.
  // --cold: a live run's caches start empty (seeding writes the shards, not memcached), so the model starts so too.
  const simCode = await scalegram(['simulate', ...common, '--cold', '--calibration', profileFile, '--out', simDir], Boolean(values.quiet), { ...process.env, [CALIBRATION_WARNED]: '1' });
  if (simCode !== EXIT.OK && simCode !== EXIT.THRESHOLDS) {
    process.stderr.write(`scalegram validate: the simulation failed (exit ${simCode})\n`);
    return simCode;
  }
  const live = loadResult(liveDir).result;
  const simulated = loadResult(simDir).result;
  const m = here.machine;
  const v = validation(live, simulated, {
    scenario: live.scenario,
    seed,
    scale,
    speed,
    env,
    calibration: { file: profileFile, how, machine: `${profile.machine.hostname} (${profile.machine.cpuModel}, ${profile.machine.cores} cores, Node ${profile.machine.nodeVersion})`, commit: `${profile.commit.sha.slice(0, 12)}${profile.commit.dirty ? ' (uncommitted changes)' : ''}` },
    machine: `${m.hostname} (${m.cpuModel}, ${m.cores} cores, Node ${m.nodeVersion}, ${m.platform})`,
    liveDir,
    simulatedDir: simDir,
  });
  for (const [name, content] of Object.entries(validationFiles(v))) writeFileSync(join(outDir, name), content);
  process.stdout.write(validationMarkdown(v));
  process.stdout.write(`\nresults: ${outDir}\nreport:  ${join(outDir, 'validate.html')}\n`);
  for (const r of v.liveInvalid) process.stderr.write(`scalegram validate: warning: ${r}\n`);
  return v.verdict === 'passed' ? EXIT.OK : EXIT.FAILED;
}
