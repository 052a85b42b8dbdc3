// Fan-out of one post to N followers on the embedded default topology, in process: the followers
// are seeded through the bulk path, then one post is made and timed until the last follower's
// feed list has it (the fan-out lag the topology records). With a data dir, every delivery also
// goes through the in-process Redis's AOF and the post's fan-out through the job journal. With a
// Redis URL the lists are on that real Redis; with an AMQP URL the jobs go through RabbitMQ.

import sharp from 'sharp';
import { seedFollows, seedUsers } from '../sim/workload/bulk-loader.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology } from '../sim/topology.ts';

export interface FanoutResult {
  followers: number;
  seedMs: number;
  fanoutMs: number;
  deliveries: number;
  deliveriesPerS: number;
  allDelivered: boolean;
}

export interface FanoutOptions {
  dataDir?: string;
  /** Feed lists on this real Redis (keys under a namespace of their own, removed at the end). */
  redisUrl?: string;
  /** RabbitMQ as the job queue. */
  amqpUrl?: string;
}

export async function benchFanout(followers: number, progress: (msg: string) => void = () => undefined, options: FanoutOptions = {}): Promise<FanoutResult> {
  const topology = await buildTopology({
    config: loadTopology('2012-sharded'),
    seed: 7,
    sampleEveryMs: 0,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
    ...(options.amqpUrl ? { amqpUrl: options.amqpUrl } : {}),
  });
  try {
    const t0 = performance.now();
    const [celebrity] = await seedUsers(topology, [{ username: 'celebrity', fullName: 'A Celebrity' }]);
    const batch = 100_000;
    let someFan = '';
    for (let i = 0; i < followers; i += batch) {
      const n = Math.min(batch, followers - i);
      const fans = await seedUsers(topology, Array.from({ length: n }, (_, j) => ({ username: `fan${i + j}`, fullName: `Fan ${i + j}` })));
      await seedFollows(topology, fans.map((f) => [f.id, celebrity!.id] as const));
      someFan = fans[fans.length - 1]!.id;
      progress(`seeded ${i + n} of ${followers} followers`);
    }
    const seedMs = performance.now() - t0;
    const photo = await sharp({ create: { width: 640, height: 640, channels: 3, background: '#a37' } }).jpeg().toBuffer();
    const before = topology.metrics.value('fanout_deliveries');
    progress('posting');
    const media = await topology.store.createMedia({ userId: celebrity!.id, caption: 'hello, everyone', filter: 'Normal', lat: null, lng: null, locationName: null, image: photo });
    await topology.idle();
    const deliveries = topology.metrics.value('fanout_deliveries') - before;
    // The topology's own measure: post time to the last follower list written.
    const fanoutMs = topology.metrics.percentile('fanout_lag_ms', {}, 100) ?? Number.NaN;
    const top = await topology.feeds.range(someFan, 1);
    return { followers, seedMs, fanoutMs, deliveries, deliveriesPerS: deliveries / (fanoutMs / 1000), allDelivered: deliveries === followers && top[0] === media.id };
  } finally {
    await topology.close();
  }
}
