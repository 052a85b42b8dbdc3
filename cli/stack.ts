// `scalegram stack up|down|status`: the real parts on this machine for a try-out (see
// sim/backends/local-stack.ts for what each does).

import { DEFAULT_STACK_DIR, LAYOUTS, stackDown, stackStatus, stackUp, type StackLayout } from '../sim/backends/local-stack.ts';
import { parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram stack up|down|status [options]

The real parts on this machine, for a try-out: Postgres clusters (Debian's cluster tools; each
primary streams to a replica, each logical shard a schema migrated by the project), memcached
processes on free ports, and the machine's Redis and RabbitMQ (started if installed and not
answering). It writes DIR/stack.json (where each part is) and DIR/topology.json (a topology that
matches them), which these use:
  scalegram serve --stack DIR           the service on the stack's memcached, Redis and RabbitMQ
  scalegram run SCENARIO --stack real   a scenario against it (DIR by default, or --stack-dir)

  up      start the stack (refused when one is up in DIR)
  status  whether each part answers, with its pid, items or replication position (exit 1 if one does not)
  down    stop and remove what the stack started, also after a crash (the machine's Redis and
          RabbitMQ keep running)

Options:
  --dir DIR         where the stack's files live (default ${DEFAULT_STACK_DIR})
  --layout L        up: small (default: ${LAYOUTS.small.description}) or 2012
                    (${LAYOUTS['2012'].description})
  --no-postgres     up: no Postgres clusters (the service's store is then embedded)
  --json            status: the status as JSON
  -h, --help        show this help

Making Postgres clusters needs root (pg_createcluster, pg_basebackup as the postgres user); without
it, or without the cluster tools, up says so and starts the rest.
`;

export async function stackCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { dir: { type: 'string' }, layout: { type: 'string' }, 'no-postgres': { type: 'boolean' }, json: { type: 'boolean' } }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const [action, ...extra] = positionals;
  if (!action || !['up', 'down', 'status'].includes(action)) throw new UsageError(`say up, down or status${action ? ` (not "${action}")` : ''}; scalegram stack --help`);
  if (extra.length > 0) throw new UsageError(`unexpected argument${extra.length > 1 ? 's' : ''}: ${extra.join(' ')}`);
  const dir = values.dir ?? DEFAULT_STACK_DIR;
  if (action !== 'up' && (values.layout !== undefined || values['no-postgres'])) throw new UsageError('--layout and --no-postgres go with stack up');
  if (action !== 'status' && values.json) throw new UsageError('--json goes with stack status');
  const progress = (line: string) => process.stderr.write(`scalegram stack: ${line}\n`);

  if (action === 'up') {
    const layout = values.layout ?? 'small';
    if (layout !== 'small' && layout !== '2012') throw new UsageError(`--layout ${layout}: small or 2012`);
    const t0 = process.hrtime.bigint();
    const state = await stackUp({ dir, layout: layout as StackLayout, postgres: !values['no-postgres'], progress, ...(process.env.REDIS_URL ? { redisUrl: process.env.REDIS_URL } : {}), ...(process.env.AMQP_URL ? { amqpUrl: process.env.AMQP_URL } : {}) });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(
      `stack up in ${secs.toFixed(1)} s: ${state.dir}\n` +
        `  topology   ${state.topologyFile}\n` +
        `  memcached  ${state.memcached.map((m) => m.address).join(', ')}\n` +
        `  postgres   ${state.postgres ? state.postgres.servers.map((s) => `${s.url} (replica :${s.replicas[0]!.port})`).join(', ') : `none (${state.postgresSkipped})`}\n` +
        `  redis      ${state.redisUrl}\n` +
        `  rabbitmq   ${state.amqpUrl.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')}\n` +
        `next: scalegram serve --stack ${dir}   or   scalegram run scenarios/android-launch.ts --stack real${values.dir !== undefined ? ` --stack-dir ${dir}` : ''}\n`,
    );
    return EXIT.OK;
  }
  if (action === 'down') {
    const r = await stackDown(dir, progress);
    process.stdout.write(`stack down: ${r.memcached} memcached process(es) killed, ${r.clusters} Postgres cluster(s) dropped\n`);
    return EXIT.OK;
  }
  const { state, parts } = await stackStatus(dir);
  if (values.json) {
    process.stdout.write(JSON.stringify({ up: state !== null, dir, layout: state?.layout ?? null, parts }, null, 2) + '\n');
  } else if (!state) {
    process.stdout.write(`no stack in ${dir} (scalegram stack up starts one)\n`);
  } else {
    process.stdout.write(`stack ${state.id} in ${state.dir} (${state.layout}, up since ${state.createdAt})\n`);
    for (const p of parts) process.stdout.write(`  ${p.up ? 'up  ' : 'DOWN'}  ${p.part.padEnd(17)} ${p.name.padEnd(24)} ${p.address.padEnd(44)} ${p.detail}\n`);
    if (!state.postgres) process.stdout.write(`  (no Postgres: ${state.postgresSkipped})\n`);
  }
  return state && parts.every((p) => p.up) ? EXIT.OK : EXIT.FAILED;
}
