// android-launch — Instagram for Android, 3 April 2012: 1M new users in 12 hours on top of the
// existing base, who sign up, follow, post, like and read feeds. Watch shards, caches, queues, Redis.
//
// Numbers (all from ../shared/BRIEF.md, "Load figures"):
// - 1M new users in 12 hours ≈ 23 signups/s on average.
// - "Oct 2011: >25 photos/s and 90 likes/s" — the upload and like rates below (a floor for April 2012).
// - Feed reads are not in the sources: we assume 10 feed reads per upload (250/s); change FEED_RATE.
// - The base was ~30M users: `population` below, at full scale (-e BASE_USERS=N changes it), with a
//   heavy-tailed, directed follow graph (celebrities exist) and a few photos each. `--scale F`
//   scales it with the rates: a live run seeds 30M × F accounts, at least 100 and at most what one
//   seeding call takes (POST /_sim/seed: ≤ 1M accounts and ≤ 5M follows, so 250,000 accounts at 20
//   follows each), or exactly -e BASE_ACCOUNTS=N accounts whatever the scale (the demo seeds
//   10,000). What each exec function does is declared in `work`; the functions are made from it.
// Run: scalegram run scenarios/android-launch.ts --speed 720 --scale 0.05 -e BASE_ACCOUNTS=5000   (12 h in one minute)

import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

// What breaks first as the launch grows: -e LOAD=F (F ≥ 1) multiplies every rate below (and the VU
// pools that carry them) by F, rounded to whole rates as k6 requires, leaving the base, the topology
// and the thresholds as they are (less load: --scale, which shrinks the base with it). -e HOURS=N
// (at most 12) replays only the first N hours (a saturating load at full scale is F times the
// events: at LOAD=10 one hour is about as many as the whole launch).
const number = (name: string, fallback: string, min: number, max: number): number => {
  const v = Number(__ENV[name] || fallback);
  if (!(v >= min && v <= max)) throw new Error(`-e ${name} must be a number from ${min} to ${max} (got "${__ENV[name]}")`);
  return v;
};
const LOAD = number('LOAD', '1', 1, 1000);
const HOURS = number('HOURS', '12', 0.1, 12);
const DURATION = `${Math.round(HOURS * 3600)}s`;
const rateOf = (perS: number) => Math.max(1, Math.round(perS * LOAD));
const SIGNUP_RATE = rateOf(23); // per second: 1,000,000 / (12 × 3600)
const UPLOAD_RATE = rateOf(25); // per second (Oct 2011)
const LIKE_RATE = rateOf(90); // per second (Oct 2011)
const FEED_RATE = rateOf(number('FEED_RATE', '250', 1, 1_000_000)); // per second: assumed 10 reads per upload
const FOLLOWS_PER_SIGNUP = 5; // new users follow a handful of accounts at once (assumed)

const photo = open('./assets/photo.jpg', 'b');

// The base the launch landed on, at full scale: ~30M accounts (BRIEF.md), a heavy-tailed, directed
// follow graph with a few celebrities, and a few photos each.
export const population: Population = {
  accounts: Number(__ENV.BASE_USERS || '30000000'),
  avgFollows: 20,
  celebrities: 5,
  mediaPerUser: 2,
  minAccounts: 100,
};

const open_rate = (rate: number, exec: string, maxVUs: number) => ({
  executor: 'constant-arrival-rate',
  rate,
  timeUnit: '1s',
  duration: DURATION,
  preAllocatedVUs: Math.max(2, Math.ceil((maxVUs * LOAD) / 4)),
  maxVUs: Math.ceil(maxVUs * LOAD),
  exec,
  gracefulStop: '10m',
});

export const options = {
  scenarios: {
    telemetry: telemetryScenario(DURATION),
    signups: open_rate(SIGNUP_RATE, 'signup', 200),
    uploads: open_rate(UPLOAD_RATE, 'post', 200),
    likes: open_rate(LIKE_RATE, 'likePhoto', 200),
    feeds: open_rate(FEED_RATE, 'readFeed', 400),
  },
  thresholds: {
    'http_req_duration{name:feed}': ['p(95)<500'],
    'http_req_failed{name:feed}': ['rate<0.01'],
    http_req_failed: ['rate<0.05'],
    cache_hit_rate: ['avg>0.5'],
  },
};

export const work = {
  sampleTopology: [],
  signup: [
    { op: 'signup', username: 'android', fullName: 'Android user', counter: 'signups_completed' },
    // New users follow celebrities first, then people they know: preferential, directed.
    { op: 'follow', who: 'new', whom: 'celebrity' },
    { op: 'follow', who: 'new', whom: 'user', count: FOLLOWS_PER_SIGNUP - 1 },
  ],
  post: [{ op: 'upload', who: 'user', caption: ['sunset', 'food', 'cat', 'tbt'].map((tag) => `Hello from Android #android #${tag}`) }],
  // Likes concentrate on popular accounts: a celebrity's latest photo half of the time.
  likePhoto: [
    { op: 'user_media', who: 'user', owner: { celebrity: 0.5 }, count: 1 },
    { op: 'like', who: 'user' },
  ],
  readFeed: [{ op: 'feed', who: 'user' }],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  return seedPopulation(population, __ENV.BASE_ACCOUNTS ? { accounts: Number(__ENV.BASE_ACCOUNTS) } : {});
}

export const signup = iteration(work.signup);
export const post = iteration(work.post, { photo });
export const likePhoto = iteration(work.likePhoto);
export const readFeed = iteration(work.readFeed);
