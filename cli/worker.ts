// `scalegram worker`: fan-out deliveries as a process of their own. It takes `fanout-chunk` jobs
// from RabbitMQ and writes the posts into followers' feed lists on the real Redis the server reads,
// acking each job only once its lists are written: kill -9 it at any moment and the broker hands
// its unacked jobs to another worker, which skips lists that already hold the post.

import { RealClock } from '../sim/engine/clock.ts';
import { AmqpJobQueue, redact } from '../sim/backends/amqp-queue.ts';
import { probeRedis } from '../sim/backends/probe.ts';
import { DELIVERY_KIND, registerDelivery } from '../sim/domain/fanout-delivery.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { FeedStore } from '../sim/parts/feed-store.ts';
import { closeRedis, createRedis } from '../sim/parts/redis-client.ts';
import { DEFAULT_PRESET, loadTopology } from '../sim/topology-config.ts';
import { namespaceProblem } from '../sim/backends/namespace.ts';
import { intOption, parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram worker --namespace NAME [options]

Work fan-out deliveries (fanout-chunk jobs) from RabbitMQ in this process, for a server started with
  scalegram serve --amqp-url URL --redis-url URL --namespace NAME --remote-jobs fanout-chunk
Each job is acked after its feed lists are written; a worker killed mid-job loses nothing (the
broker gives the job to another worker, which skips lists that already hold the post).

Options:
  --namespace NAME    the server's --namespace: its queues (scalegram.NAME.<kind>) and Redis keys
  --amqp-url URL      RabbitMQ (default: $AMQP_URL)
  --redis-url URL     the real Redis holding the feed lists (default: $REDIS_URL)
  --topology T        the server's preset or JSON file, for the feed lists' cap (default ${DEFAULT_PRESET})
  --concurrency N     jobs worked at once (default 8)
  --progress-every-ms MS
                      print what was done every MS ms while it changes (default 5000; 0 = never)
  -h, --help          show this help

Stops on SIGINT or SIGTERM after finishing (and acking) the jobs it holds.
`;

export async function workerCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    namespace: { type: 'string' },
    'amqp-url': { type: 'string' },
    'redis-url': { type: 'string' },
    topology: { type: 'string' },
    concurrency: { type: 'string' },
    'progress-every-ms': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const ns = values.namespace;
  if (ns === undefined) throw new UsageError('--namespace is required: the name given to the server with --namespace');
  const nsProblem = namespaceProblem(ns);
  if (nsProblem) throw new UsageError(`--${nsProblem}`);
  const amqpUrl = values['amqp-url'] ?? (process.env.AMQP_URL || undefined);
  if (!amqpUrl) throw new UsageError('RabbitMQ is required: --amqp-url URL or $AMQP_URL');
  const redisUrl = values['redis-url'] ?? (process.env.REDIS_URL || undefined);
  if (!redisUrl) throw new UsageError('a real Redis is required: --redis-url URL or $REDIS_URL (the one the server writes feed lists to)');
  const concurrency = intOption(values.concurrency, 'concurrency', 8, 1, 10_000);
  const progressEveryMs = intOption(values['progress-every-ms'], 'progress-every-ms', 5000, 0, 3_600_000);
  const config = loadTopology(values.topology ?? DEFAULT_PRESET);

  const clock = new RealClock();
  const metrics = new Metrics(clock);
  // Asked once, with a short timeout, before a client that would retry (and log) for long.
  const redisDown = await probeRedis(redisUrl);
  if (redisDown) {
    process.stderr.write(`scalegram worker: ${redisDown} [SG_ERR_BACKEND_UNREACHABLE]\n`);
    return EXIT.UNAVAILABLE;
  }
  const redis = createRedis({ url: redisUrl, name: `worker-${process.pid}` });
  // ioredis reconnects by itself; meanwhile chunks fail with SG_ERR_BACKEND_UNREACHABLE and go back
  // to the broker. Said once per outage, not once per retry.
  let redisOk = true;
  redis.on('error', (err: Error) => {
    if (!redisOk) return;
    redisOk = false;
    process.stderr.write(`scalegram worker: Redis at ${redact(redisUrl)}: ${err.message}; chunks go back to RabbitMQ until it answers\n`);
  });
  redis.on('ready', () => {
    if (!redisOk) process.stderr.write(`scalegram worker: Redis at ${redact(redisUrl)} answers again\n`);
    redisOk = true;
  });
  const feeds = new FeedStore(config.feed, { clock, metrics, primary: redis, keyPrefix: `scalegram:${ns}:` });
  let lost: Error | null = null;
  let wake: () => void = () => {};
  const stopped = new Promise<string>((resolve) => {
    wake = () => resolve('lost');
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  let queue: AmqpJobQueue;
  try {
    queue = await AmqpJobQueue.connect(
      { ...config.queue, workers: concurrency },
      {
        url: amqpUrl,
        prefix: `scalegram.${ns}`,
        consume: [DELIVERY_KIND],
        onLost: (err) => {
          lost = err;
          wake();
        },
      },
      { clock, metrics },
    );
  } catch (err) {
    await closeRedis(redis).catch(() => undefined);
    throw err;
  }
  registerDelivery(queue, feeds, metrics);
  await queue.start();
  process.stdout.write(
    `scalegram worker: taking ${DELIVERY_KIND} jobs from RabbitMQ at ${redact(amqpUrl)} (queue ${queue.queueName(DELIVERY_KIND)}), ` +
      `${concurrency} at a time; feed lists on Redis at ${redact(redisUrl)} (keys scalegram:${ns}:)\n`,
  );

  const figures = () => {
    const jobs = metrics.sum('queue_jobs', { kind: DELIVERY_KIND });
    const failed = metrics.value('queue_jobs', { kind: DELIVERY_KIND, result: 'error' });
    const again = metrics.value('queue_redelivered', { kind: DELIVERY_KIND });
    const delivered = metrics.value('feed_deliveries');
    const skipped = metrics.value('fanout_duplicates_skipped');
    return `${jobs.toLocaleString('en-US')} jobs (${failed} failed, ${again} handed out again), ${delivered.toLocaleString('en-US')} deliveries, ${skipped} skipped as already delivered`;
  };
  let last = figures(); // nothing done yet: the first line comes with the first job
  const progress =
    progressEveryMs > 0
      ? setInterval(() => {
          const now = figures();
          if (now !== last) process.stdout.write(`worker: ${now}\n`);
          last = now;
        }, progressEveryMs)
      : null;
  const why = await stopped;
  if (progress) clearInterval(progress);
  if (why === 'lost') {
    process.stderr.write(`scalegram worker: ${lost!.message}; the jobs it held go to another worker [SG_ERR_BACKEND_UNREACHABLE]\n`);
    await closeRedis(redis).catch(() => undefined);
    return EXIT.UNAVAILABLE;
  }
  process.stdout.write(`\nscalegram worker: ${why}, finishing the jobs it holds\n`);
  await queue.close();
  await feeds.settle();
  await closeRedis(redis).catch(() => undefined);
  process.stdout.write(`worker: ${figures()}\n`);
  return EXIT.OK;
}
