// Seeding speed and what it costs the event loop, in process on the default topology: one
// `population.seed` of N accounts with M follows each, timed per step, while a probe measures the
// longest stretch the event loop could not run anything else (what every API request would wait).
//
//   npx tsx bench/seed.ts [users=100000] [avgFollows=20] [mediaPerUser=0]

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology } from '../sim/topology.ts';
import type { SeedAnswer } from '../sim/workload/population.ts';

export interface SeedBenchResult {
  answer: Omit<SeedAnswer, 'sample' | 'celebrities'>;
  wallMs: number;
  /** CPU time of the process during the seed, user + system (ms): less sensitive to a busy machine than wall time. */
  cpuMs: number;
  /** Longest gap between two runs of a 1 ms timer during the seed, less the 1 ms (ms). */
  longestBlockMs: number;
  /**
   * The most CPU time the process used between two runs of that timer (ms): the longest block less
   * the time a busy machine kept the process waiting (other threads' CPU, e.g. the GC's, included).
   */
  longestBlockCpuMs: number;
  /** p99 of the event loop's delay during the seed (ms). */
  loopDelayP99Ms: number;
}

export async function benchSeed(users: number, avgFollows: number, mediaPerUser = 0): Promise<SeedBenchResult> {
  const topology = await buildTopology({ config: loadTopology('2012-sharded', process.env.REPLICAS ? { database: { replicas: Number(process.env.REPLICAS) } } : {}), seed: 1, sampleEveryMs: 0 });
  try {
    let longest = 0;
    let longestCpu = 0;
    let last = performance.now();
    let lastCpu = process.cpuUsage();
    const probe = setInterval(() => {
      const now = performance.now();
      const cpu = process.cpuUsage(lastCpu);
      longest = Math.max(longest, now - last - 1);
      longestCpu = Math.max(longestCpu, (cpu.user + cpu.system) / 1000);
      last = now;
      lastCpu = process.cpuUsage();
    }, 1);
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const { sample: _s, celebrities: _c, ...answer } = await topology.population.seed({ users, avgFollows, mediaPerUser, seed: 1, sample: 0 });
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(probe);
    delay.disable();
    return { answer, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, longestBlockMs: longest, longestBlockCpuMs: longestCpu, loopDelayP99Ms: delay.percentile(99) / 1e6 };
  } finally {
    await topology.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [users = 100_000, avgFollows = 20, media = 0] = process.argv.slice(2).map(Number);
  const r = await benchSeed(users, avgFollows, media);
  console.log(JSON.stringify({ users: r.answer.users, follows: r.answer.follows, media: r.answer.media, ms: r.answer.ms, wallMs: Math.round(r.wallMs), cpuMs: Math.round(r.cpuMs), longestBlockMs: Math.round(r.longestBlockMs), longestBlockCpuMs: Math.round(r.longestBlockCpuMs), loopDelayP99Ms: Math.round(r.loopDelayP99Ms) }));
}
