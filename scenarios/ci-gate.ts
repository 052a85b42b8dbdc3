// ci-gate — a short, steady mix of the 2012 workload for a CI performance gate: the same load every
// run (fixed rates, fixed seed), small enough to finish in about fifteen seconds, with thresholds
// that state the service's budget. A pipeline runs it, fails on thresholds (exit 99), and compares
// its summary with a baseline committed in the repository (`scalegram compare`, exit 1 on a
// regression). See .github/workflows/perf-gate.yml and baselines/README.md.
//
// The mix follows the ratios of ../shared/BRIEF.md ("Load figures": Oct 2011, 25 photos/s and
// 90 likes/s; feed reads assumed at 10 per upload as in android-launch), scaled down 5× so that a
// CI runner serves all of it on time: 5 uploads/s, 18 likes/s, 50 feed reads/s, 4 signups/s.
// -e SLOW_DB_MS=N rehearses a regression: after seeding, every database query takes N ms longer
// (POST /_sim/db/service-time), as a missing index or an overloaded server would.
// Run: scalegram run scenarios/ci-gate.ts --seed 1

import * as api from './lib/api.ts';
import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

const DURATION = __ENV.DURATION || '12s';
const photo = open('./assets/photo.jpg', 'b');

// The same 5,000 accounts whatever the scale (minAccounts), so every gate run starts alike.
export const population: Population = { accounts: 5000, avgFollows: 20, celebrities: 3, mediaPerUser: 2, minAccounts: 5000 };

const steady = (rate: number, execName: string, maxVUs: number) => ({
  executor: 'constant-arrival-rate',
  rate,
  timeUnit: '1s',
  duration: DURATION,
  preAllocatedVUs: Math.max(2, Math.ceil(maxVUs / 2)),
  maxVUs,
  exec: execName,
  gracefulStop: '5s',
});

export const options = {
  scenarios: {
    telemetry: telemetryScenario(DURATION),
    signups: steady(4, 'signup', 10),
    uploads: steady(5, 'post', 20),
    likes: steady(18, 'likePhoto', 20),
    feeds: steady(50, 'readFeed', 40),
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
  const data = await seedPopulation(population, { roster: 1000 });
  if (__ENV.SLOW_DB_MS) await api.admin('/_sim/db/service-time', { serviceTimeMs: Number(__ENV.SLOW_DB_MS) });
  return data;
}

export const signup = iteration(work.signup);
export const post = iteration(work.post, { photo });
export const likePhoto = iteration(work.likePhoto);
export const readFeed = iteration(work.readFeed);
