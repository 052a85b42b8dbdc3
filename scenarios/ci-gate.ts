// ci-gate — a short, steady mix of the 2012 workload for a CI performance gate: the same load every
// run (fixed rates, fixed seed), small enough to finish in about fifteen seconds, with thresholds
// that state the service's budget. The gate (.github/workflows/perf-gate.yml, baselines/README.md)
// runs it twice: live with --no-thresholds, for the work each request does (queries, cache
// operations, Redis commands, jobs, bytes: counted by the topology, the same on a busy machine and
// a quiet one), and simulated, for latencies that no machine's noise moves, judged by these
// thresholds (exit 99). `scalegram compare` then holds both against the committed baseline (exit 1).
//
// Every iteration's random choices depend only on the seed, its scenario and its index (the runner
// forks Math.random per iteration), and the VU budgets are wide enough that no arrival is dropped
// even when the machine is slow, so the same requests run in every gate run.
//
// The mix follows the ratios of ../shared/BRIEF.md ("Load figures": Oct 2011, 25 photos/s and
// 90 likes/s; feed reads assumed at 10 per upload as in android-launch), scaled down 5× so that a
// CI runner serves all of it on time: 5 uploads/s, 18 likes/s, 50 feed reads/s, 4 signups/s.
// -e SLOW_DB_MS=N rehearses a regression: every database query takes N ms longer (the topology's
// database.serviceTimeMs, which the live topology holds each query's connection for and the
// simulator adds to each modelled query), as a missing index or an overloaded server would.
// Run (the gate's two runs; see the README's "The CI performance gate" for the comparisons):
//   scalegram run scenarios/ci-gate.ts --seed 1 --no-thresholds --out reports/out/gate/live
//   scalegram simulate scenarios/ci-gate.ts --seed 1 --out reports/out/gate/simulated

import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

const DURATION = __ENV.DURATION || '6s';
const SLOW_DB_MS = /^\d+(\.\d+)?$/.test(__ENV.SLOW_DB_MS || '0') ? Number(__ENV.SLOW_DB_MS || '0') : NaN;
if (!(SLOW_DB_MS >= 0 && SLOW_DB_MS <= 60_000)) throw new Error(`-e SLOW_DB_MS must be a number of ms from 0 to 60000 (got "${__ENV.SLOW_DB_MS}")`);
const photo = open('./assets/photo.jpg', 'b');

// The same 5,000 accounts whatever the scale (minAccounts), so every gate run starts alike.
export const topology = { extends: '2012-sharded', database: { serviceTimeMs: SLOW_DB_MS }, cache: { leases: true } };

export const population: Population = { accounts: 5000, avgFollows: 20, celebrities: 3, mediaPerUser: 2, minAccounts: 5000 };

// maxVUs holds ten seconds of arrivals: a slow machine makes requests wait, it does not drop them
// (a dropped arrival would change which requests ran, and so the work counted).
const steady = (rate: number, execName: string) => ({
  executor: 'constant-arrival-rate',
  rate,
  timeUnit: '1s',
  duration: DURATION,
  preAllocatedVUs: rate,
  maxVUs: 10 * rate,
  exec: execName,
  gracefulStop: '30s',
});

export const options = {
  scenarios: {
    telemetry: telemetryScenario(DURATION),
    signups: steady(4, 'signup'),
    uploads: steady(5, 'post'),
    likes: steady(18, 'likePhoto'),
    feeds: steady(50, 'readFeed'),
  },
  thresholds: {
    'http_req_duration{name:feed}': ['p(95)<250'],
    'http_req_duration{name:upload}': ['p(95)<1500'],
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    cache_hit_rate: ['avg>0.6'],
    fanout_lag_ms: ['max<5000'],
  },
};

export const work = {
  sampleTopology: [],
  signup: [
    { op: 'signup', username: 'gate', fullName: 'Gate user' },
    { op: 'follow', who: 'new', whom: 'celebrity' },
  ],
  post: [{ op: 'upload', who: 'user', caption: 'CI gate #scalegram' }],
  likePhoto: [
    { op: 'user_media', who: 'user', owner: { celebrity: 0.5 }, count: 1 },
    { op: 'like', who: 'user' },
  ],
  readFeed: [{ op: 'feed', who: 'user' }],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  return seedPopulation(population, { roster: 1000 });
}

export const signup = iteration(work.signup);
export const post = iteration(work.post, { photo });
export const likePhoto = iteration(work.likePhoto);
export const readFeed = iteration(work.readFeed);
