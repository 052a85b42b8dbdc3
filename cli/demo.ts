// `scalegram demo` (what `npm start` runs): the main job end to end — Instagram's Android launch
// (30M accounts, 1M signups in 12 hours) simulated at full scale in virtual time, with the progress
// line, the summary and the reports, then the report's path and the three teaching findings: the
// hot shard and whose data it holds, the cache hit ratio at its lowest and at peak, fan-out lag.
// Deterministic: the machine it runs on cannot change its verdict. `--live` replays the same
// scenario against the real photo service instead, compressed and scaled to this machine.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findings, loadResult } from '../reports/index.ts';
import { teachingFindings } from '../reports/findings.ts';
import { parse, seedOption } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { runCommand } from './run.ts';
import { simulateCommand } from './simulate.ts';
import { UsageError } from './usage-error.ts';

/** The demo's defaults: 12 hours in 60 s; rates and population scaled to what 2 cores serve on time. */
export const DEMO = { scenario: 'scenarios/android-launch.ts', speed: '720', scale: '0.0015', seed: '2012', accounts: '10000' } as const;

const HELP = `Usage: scalegram demo [options]      (npm start)

Simulates Instagram's Android launch (3 April 2012: 1M new users in 12 hours on a base of 30M
accounts, with uploads, likes and feed reads) at full scale on the 2012 topology, in virtual time:
the same numbers every time, whatever the machine (about 7½ minutes of wall time on a 2-core
machine; --scale 0.1 gives a first look in about 30 s). Shows the progress line and
the summary, writes the result directory with report.html, and prints the three teaching findings:
the hot shard and whose data it holds, the cache hit ratio at its lowest and at peak, fan-out lag.

Options:
  --live           replay it against the real photo service instead, in process: 12 hours compressed
                   into a minute (--speed), rates scaled to a laptop (--scale), on ${DEMO.accounts} seeded accounts
  --scale F        population and rates (default: full scale; with --live ${DEMO.scale})
  --speed N        with --live: time compression (default ${DEMO.speed}: 12 hours in one minute)
  --seed N         seed (default ${DEMO.seed}: the same population and choices every time)
  --topology T     another topology: a preset (e.g. 2011-vertical) or a JSON file
  --out DIR        result directory (default reports/out/android-launch-…/)
  -q, --quiet      no progress line
  -h, --help       show this help

For other scenarios and every option, see "scalegram simulate --help" and "scalegram run --help".
`;

export async function demoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { live: { type: 'boolean' }, speed: { type: 'string' }, scale: { type: 'string' }, seed: { type: 'string' }, topology: { type: 'string' }, out: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (positionals.length > 0) throw new UsageError(`demo takes no scenario (it replays ${DEMO.scenario}); use "scalegram run <scenario>" for others`);
  for (const [name, v] of [['speed', values.speed], ['scale', values.scale]] as const) {
    if (v !== undefined && !(Number(v) > 0 && Number.isFinite(Number(v)))) throw new UsageError(`--${name} must be a positive number (got "${v}")`);
  }
  if (values.seed !== undefined) seedOption(values.seed); // refused before the banner, as the rest
  const scenario = fileURLToPath(new URL(`../${DEMO.scenario}`, import.meta.url));
  if (!values.live) {
    if (values.speed !== undefined) throw new UsageError('--speed is for --live (virtual time runs as fast as it can)');
    const args = [scenario, '--seed', values.seed ?? DEMO.seed];
    if (values.scale) args.push('--scale', values.scale);
    if (values.topology) args.push('--topology', values.topology);
    if (values.out) args.push('--out', values.out);
    if (values.quiet) args.push('--quiet');
    process.stderr.write(
      `scalegram demo: Instagram's Android launch, 3 April 2012 — 1M signups in 12 hours on a base of 30M accounts,\n` +
        `on the ${values.topology ?? '2012'} topology, simulated${values.scale ? ` at scale ${values.scale}` : ' at full scale'} in virtual time (the live replay: scalegram demo --live).\n\n`,
    );
    let out: string | null = null;
    const code = await simulateCommand(args, { onWritten: (dir) => (out = dir) });
    const dir = out as string | null;
    if (!dir) return code;
    const { result } = loadResult(dir);
    process.stdout.write(`\nWhat to look at:\n${teachingFindings(result).map((f, i) => `  ${i + 1}. ${f}`).join('\n')}\n`);
    process.stdout.write(`\nOpen the report: ${resolve(dir, 'report.html')}\n`);
    return code;
  }
  // The base population is a fixed sample (BASE_ACCOUNTS), so that load lands on a realistic spread
  // of shards whatever the rate scale.
  const args = [scenario, '--speed', values.speed ?? DEMO.speed, '--scale', values.scale ?? DEMO.scale, '--seed', values.seed ?? DEMO.seed, '-e', `BASE_ACCOUNTS=${DEMO.accounts}`];
  if (values.topology) args.push('--topology', values.topology);
  if (values.out) args.push('--out', values.out);
  if (values.quiet) args.push('--quiet');
  process.stderr.write(
    `scalegram demo: Instagram's Android launch, 3 April 2012 — 1M signups in 12 hours on the ${values.topology ?? '2012'} topology,\n` +
      `compressed ${args[2]}× (12 h in ${(43_200 / Number(args[2])).toFixed(0)} s), rates at scale ${args[4]}, on ${Number(DEMO.accounts).toLocaleString('en-US')} seeded accounts. Ctrl-C stops it.\n\n`,
  );
  let written: { outDir: string; reports: string[] } | null = null;
  const code = await runCommand(args, { onWritten: (outDir, reports) => (written = { outDir, reports }) });
  const w = written as { outDir: string; reports: string[] } | null;
  if (!w) return code;
  const html = w.reports.find((p) => p.endsWith('.html'));
  const { result } = loadResult(w.outDir);
  const top = findings(result);
  process.stdout.write(`\nWhat matters most in this run:\n${top.map((f, i) => `  ${i + 1}. ${f}`).join('\n')}\n`);
  if (html) process.stdout.write(`\nOpen the report: ${resolve(html)}\n`);
  return code;
}
