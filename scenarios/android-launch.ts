// android-launch — Instagram for Android, 3 April 2012: 1M new users in 12 hours on top of the
// existing base, who sign up, follow, post, like and read feeds. Watch shards, caches, queues, Redis.
//
// Numbers (all from ../shared/BRIEF.md, "Load figures"):
// - 1M new users in 12 hours ≈ 23 signups/s on average.
// - "Oct 2011: >25 photos/s and 90 likes/s" — the upload and like rates below (a floor for April 2012).
// - Feed reads are not in the sources: we assume 10 feed reads per upload (250/s); change FEED_RATE.
// - The base was ~30M users; a run seeds a sample of BASE_USERS (× --scale; or exactly
//   BASE_ACCOUNTS accounts, whatever the scale, e.g. for the demo), with a heavy-tailed,
//   directed follow graph (celebrities exist) and a few photos each.
// Run: scalegram run scenarios/android-launch.ts --speed 720 --scale 0.05   (12 h in one minute)

import { check } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import * as api from './lib/api.ts';
import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

const SCALE = Number(__ENV.SCALE || '1');
const BASE_USERS = Number(__ENV.BASE_USERS || '100000');
const SIGNUP_RATE = 23; // per second: 1,000,000 / (12 × 3600)
const UPLOAD_RATE = 25; // per second (Oct 2011)
const LIKE_RATE = 90; // per second (Oct 2011)
const FEED_RATE = Number(__ENV.FEED_RATE || '250'); // per second: assumed 10 reads per upload
const FOLLOWS_PER_SIGNUP = 5; // new users follow a handful of accounts at once (assumed)

const photo = open('./assets/photo.jpg', 'b');
const signups = new Counter('signups_completed');

const open_rate = (rate: number, exec: string, maxVUs: number) => ({
  executor: 'constant-arrival-rate',
  rate,
  timeUnit: '1s',
  duration: '12h',
  preAllocatedVUs: Math.max(2, Math.ceil(maxVUs / 4)),
  maxVUs,
  exec,
  gracefulStop: '10m',
});

export const options = {
  scenarios: {
    telemetry: telemetryScenario('12h'),
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

interface Setup {
  users: api.SeededUser[];
  celebrities: api.SeededUser[];
}

export async function setup(): Promise<Setup> {
  const base = __ENV.BASE_ACCOUNTS ? Math.max(100, Number(__ENV.BASE_ACCOUNTS)) : Math.max(100, Math.round(BASE_USERS * SCALE));
  const seeded = await api.seed({ users: base, avgFollows: 20, celebrities: 5, mediaPerUser: 2, seed: Number(__ENV.SEED || '1') });
  const users = await api.users(0, Math.min(base, 2000));
  const celebrities = [...seeded.sample].sort((a, b) => (b.followed_by ?? 0) - (a.followed_by ?? 0)).slice(0, 5);
  return { users, celebrities };
}

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)]!;
}

export async function signup(data: Setup): Promise<void> {
  const n = exec.scenario.iterationInTest;
  const user = await api.signup(`android_${exec.vu.idInTest}_${n}`, `Android user ${n}`);
  if (!check(user, { 'signed up': (u) => u !== null })) return;
  signups.add(1);
  // New users follow celebrities first, then people they know: preferential, directed.
  const targets = [pick(data.celebrities), ...Array.from({ length: FOLLOWS_PER_SIGNUP - 1 }, () => pick(data.users))];
  for (const t of targets) check(await api.follow(user!.access_token, t.id), { 'follow ok': (r) => r.status === 200 });
}

export async function post(data: Setup): Promise<void> {
  const u = pick(data.users);
  const res = await api.upload(u.access_token, photo, `Hello from Android #android #${['sunset', 'food', 'cat', 'tbt'][Math.floor(Math.random() * 4)]}`);
  check(res, { 'upload ok': (r) => r.status === 200 });
}

export async function likePhoto(data: Setup): Promise<void> {
  // Likes concentrate on popular accounts: a celebrity's latest photo half of the time.
  const owner = Math.random() < 0.5 ? pick(data.celebrities) : pick(data.users);
  const viewer = pick(data.users);
  const res = await api.recentMedia(viewer.access_token, owner.id, 1);
  const items = res.status === 200 ? (res.json('data') as Array<{ id: string }>) : [];
  if (items.length === 0) return;
  check(await api.like(viewer.access_token, items[0]!.id), { 'like ok': (r) => r.status === 200 });
}

export async function readFeed(data: Setup): Promise<void> {
  const res = await api.feed(pick(data.users).access_token);
  check(res, { 'feed ok': (r) => r.status === 200 });
}
