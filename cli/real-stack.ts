// `--stack real` for the commands that build a server of their own (run, calibrate): which real
// parts it stands on — a stack that `scalegram stack up` started (--stack-dir, else the default
// directory), else the machine's services — each checked before anything runs.

import { redact } from '../sim/backends/amqp-queue.ts';
import { DEFAULT_STACK_DIR, readStack, stackPostgres } from '../sim/backends/local-stack.ts';
import { probeAmqp, probeMemcached, probeRedis, realStack, type RealStack } from '../sim/backends/probe.ts';
import { UsageError } from './usage-error.ts';

export interface ChosenStack {
  backends: RealStack;
  /** The stack's topology file, when a stack is up (the command uses it unless given --topology). */
  topologyFile?: string;
}

/**
 * The real parts for `command`, or a string saying which one did not answer (the caller exits 69).
 * The environment's URLs win over the stack's, as serve's options win over --stack. Says on stderr
 * what it chose.
 */
export async function chooseRealStack(command: string, stackDir: string | undefined, topologyGiven: boolean): Promise<ChosenStack | string> {
  const up = readStack(stackDir ?? DEFAULT_STACK_DIR);
  if (stackDir !== undefined && !up) throw new UsageError(`--stack-dir ${stackDir}: no stack there (scalegram stack up --dir ${stackDir} starts one)`);
  const env = realStack(process.env);
  const stackPg = up ? stackPostgres(up) : undefined;
  const postgres = env.postgres ?? stackPg;
  const backends: RealStack = up
    ? { redisUrl: process.env.REDIS_URL || up.redisUrl, amqpUrl: process.env.AMQP_URL || up.amqpUrl, memcached: process.env.MEMCACHED_SERVERS ? env.memcached : up.memcached, ...(postgres ? { postgres } : {}) }
    : env;
  if (up) process.stderr.write(`scalegram ${command}: stack real: the stack in ${up.dir}${topologyGiven ? '' : `, topology ${up.topologyFile}`}\n`);
  for (const problem of await Promise.all([probeRedis(backends.redisUrl), probeAmqp(backends.amqpUrl), probeMemcached(backends.memcached)])) {
    if (problem) return `--stack real: ${problem} (set REDIS_URL, AMQP_URL or MEMCACHED_SERVERS) [SG_ERR_BACKEND_UNREACHABLE]`;
  }
  const mc = backends.memcached === 'local' ? 'memcached processes the run starts (one per cache node)' : `memcached at ${backends.memcached.map((m) => (typeof m === 'string' ? m : m.address)).join(', ')}`;
  process.stderr.write(`scalegram ${command}: stack real: feed lists on Redis at ${redact(backends.redisUrl)}, jobs on RabbitMQ at ${redact(backends.amqpUrl)}, the cache on ${mc}; ${postgres ? `the store on ${postgres.length} Postgres server(s) (${postgres.map((s) => redact(s.url)).join(', ')})` : 'databases embedded'}\n`);
  return { backends, ...(up ? { topologyFile: up.topologyFile } : {}) };
}
