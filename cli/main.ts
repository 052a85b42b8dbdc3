// Entry point of `scalegram <command>`: dispatches to one module per command and turns known
// errors into a message and an exit code instead of a stack trace.

import { isSimError } from '../sim/engine/errors.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `scalegram — a simulated 2012 Instagram to load-test and learn from

Usage: scalegram <command> [options]

Commands:
  demo      the main job in one command (npm start): Instagram's Android launch replayed, with a report
  serve     start the photo service (Instagram API v1) on a simulated topology
  clients   register, list or revoke the API clients of a running server (real-time subscriptions)
  run       replay a growth-event scenario (k6 dialect) against the photo service
  simulate  replay a growth event at full scale in virtual time (no HTTP, no wall clock)
  export-k6 bundle a scenario into plain JavaScript for real k6
  report    regenerate a run's reports (report.md, report.html, junit.xml) from its result.json
  dashboard replay a finished run or simulation in the live teaching dashboard
  calibrate measure what the live service costs on this machine: a profile for simulate --calibration
  validate  run a scenario live and simulated (calibrated) with one seed, and compare them side by side
  compare   compare two runs metric by metric; exit 1 on a regression beyond tolerance
  sweep     run a scenario over a grid of topologies and compare them side by side
  worker    work fan-out deliveries from RabbitMQ as a separate process (beside serve --remote-jobs)
  stack     bring the real parts up on this machine (Postgres clusters, memcached, Redis, RabbitMQ), or down
  bench     measure the server against a bare Fastify route, and fan-out to 1M followers

Run "scalegram <command> --help" for the options of a command.
`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./demo.ts')).demoCommand,
  serve: async () => (await import('./serve.ts')).serveCommand,
  clients: async () => (await import('./clients.ts')).clientsCommand,
  bench: async () => (await import('./bench.ts')).benchCommand,
  worker: async () => (await import('./worker.ts')).workerCommand,
  stack: async () => (await import('./stack.ts')).stackCommand,
  run: async () => (await import('./run.ts')).runCommand,
  simulate: async () => (await import('./simulate.ts')).simulateCommand,
  'export-k6': async () => (await import('./export-k6.ts')).exportK6Command,
  report: async () => (await import('./report.ts')).reportCommand,
  dashboard: async () => (await import('./dashboard.ts')).dashboardCommand,
  calibrate: async () => (await import('./calibrate.ts')).calibrateCommand,
  validate: async () => (await import('./validate.ts')).validateCommand,
  compare: async () => (await import('./compare.ts')).compareCommand,
  sweep: async () => (await import('./sweep.ts')).sweepCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return name ? EXIT.OK : EXIT.USAGE;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`scalegram: unknown command "${name}"\n\n${HELP}`);
    return EXIT.USAGE;
  }
  try {
    return await (await load())(rest);
  } catch (err) {
    if (isSimError(err, 'SG_ERR_CONFIG_INVALID') || isSimError(err, 'SG_ERR_CALIBRATION_INVALID')) {
      process.stderr.write(`scalegram ${name}: ${err.message} [${err.code}]\n`);
      return EXIT.INVALID_CONFIG;
    }
    if (isSimError(err, 'SG_ERR_BACKEND_UNREACHABLE')) {
      process.stderr.write(`scalegram ${name}: ${err.message} [${err.code}]\n`);
      return EXIT.UNAVAILABLE;
    }
    if (isSimError(err, 'SG_ERR_INVALID_PARAM')) {
      process.stderr.write(`scalegram ${name}: ${err.message} [${err.code}]\n`);
      return EXIT.USAGE;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`scalegram ${name}: ${err.message}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }
}
