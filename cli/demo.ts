// `scalegram demo` (what `npm start` runs): the main job end to end on the embedded default — the
// android-launch replay (1M signups in 12 hours, Instagram's Android launch) compressed to about a
// minute and scaled to this machine, with the live progress line, the summary and the reports —
// then the path of the HTML report and the three findings that matter most.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findings, loadResult } from '../reports/index.ts';
import { parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { runCommand } from './run.ts';
import { UsageError } from './usage-error.ts';

/** The demo's defaults: 12 hours in 60 s; rates and population scaled to what 2 cores serve on time. */
export const DEMO = { scenario: 'scenarios/android-launch.ts', speed: '720', scale: '0.0015', seed: '2012', accounts: '10000' } as const;

const HELP = `Usage: scalegram demo [options]      (npm start)

Replays Instagram's Android launch (3 April 2012: 1M new users in 12 hours, with uploads, likes and
feed reads) against the photo service on the default 2012 topology, in process: 12 hours compressed
into a minute, rates and population scaled to a laptop. Shows the live progress line and the summary,
writes the result directory with report.html, and prints the three findings that matter most.

Options:
  --speed N        time compression (default ${DEMO.speed}: 12 hours in one minute)
  --scale F        rates (default ${DEMO.scale}); the base population is ${DEMO.accounts} seeded accounts
  --seed S         seed (default ${DEMO.seed}: the same population and choices every time)
  --topology T     another topology: a preset (e.g. 2011-vertical) or a JSON file
  --out DIR        result directory (default reports/out/android-launch-<timestamp>/)
  -q, --quiet      no progress line
  -h, --help       show this help

For other scenarios and every option, see "scalegram run --help".
`;

export async function demoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { speed: { type: 'string' }, scale: { type: 'string' }, seed: { type: 'string' }, topology: { type: 'string' }, out: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (positionals.length > 0) throw new UsageError(`demo takes no scenario (it replays ${DEMO.scenario}); use "scalegram run <scenario>" for others`);
  for (const [name, v] of [['speed', values.speed], ['scale', values.scale]] as const) {
    if (v !== undefined && !(Number(v) > 0 && Number.isFinite(Number(v)))) throw new UsageError(`--${name} must be a positive number (got "${v}")`);
  }
  const scenario = fileURLToPath(new URL(`../${DEMO.scenario}`, import.meta.url));
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
