// `scalegram dashboard <result-dir | result.json>`: replays a finished run or simulation in the
// teaching dashboard (dashboard/replay-source.ts), until Ctrl-C.

import { ReplaySource } from '../dashboard/replay-source.ts';
import type { SeriesData } from '../scenarios/runner/k6-metrics.ts';
import { startDashboard } from '../dashboard/server.ts';
import { loadResult, ResultInputError } from '../reports/load-result.ts';
import { intOption, parse, positiveNumber } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { listenErrorMessage } from './listen.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram dashboard <result-dir | result.json> [--speed N] [--port N]

Replays a finished run (scalegram run) or simulation (scalegram simulate) in the teaching dashboard:
its charts and event marks build up as they did, N seconds of the run per second (default 10), and
the diagram shows the topology as the run left it. The page is served on loopback; its URL, with
its key, is printed. A replay cannot act: its buttons are hidden. Ctrl-C stops it.

  --speed N   seconds of the run per second of replay (default 10)
  --port N    the dashboard's port (default: a free one)

Example: scalegram dashboard reports/out/latest
`;

export async function dashboardCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { speed: { type: 'string' }, port: { type: 'string' } }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('give exactly one result directory or result.json (see --help)');
  const speed = positiveNumber(values.speed as string | undefined, 'speed', 10);
  const port = intOption(values.port as string | undefined, 'port', 0, 0, 65535);
  let loaded;
  try {
    loaded = loadResult(positionals[0]!);
  } catch (e) {
    if (e instanceof ResultInputError) throw new UsageError(e.message);
    throw e;
  }
  const r = loaded.result as unknown as { topology?: unknown; telemetry?: { nowMs: number; events: Array<{ t: number }> } & Record<string, unknown>; seed: number; scenario: string; series?: SeriesData };
  if (!r.topology || !r.telemetry) throw new UsageError(`${loaded.file} has no topology telemetry to replay (the run could not read its target's admin API)`);
  let dashboard;
  try {
    dashboard = await startDashboard({ source: new ReplaySource({ topology: r.topology, telemetry: r.telemetry, seed: r.seed, scenario: r.scenario, ...(r.series ? { series: r.series } : {}) }, speed), port });
  } catch (err) {
    throw new UsageError(listenErrorMessage(err, '127.0.0.1', port) ?? `the dashboard could not start: ${(err as Error).message}`);
  }
  process.stdout.write(`scalegram dashboard: replaying ${r.scenario} (seed ${r.seed}) at ${speed}×: ${(r.telemetry.nowMs / 1000).toFixed(0)} s of run in ${(r.telemetry.nowMs / 1000 / speed).toFixed(0)} s\n`);
  process.stdout.write(`dashboard: ${dashboard.url}\n  (open it in a browser on this machine; Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => void dashboard.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return EXIT.OK;
}
