// celebrity-post — an account with a very large following posts. The fan-out queue backs up,
// delivery lag grows, and the likes and comments that follow land on one hot shard.
//
// Numbers (../shared/BRIEF.md, "Feed fan-out"): Twitter delivered one post to 1M followers in a
// median 3.5 s (p99 up to 5 min), in chunks of ~4K; lists are capped at 800. Here the celebrity has
// CELEB_FOLLOWERS × --scale followers (default 1,000,000), seeded through the bulk path.
// Run: scalegram run scenarios/celebrity-post.ts --scale 0.1

import { check } from 'k6';
import * as api from './lib/api.ts';
import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

const SCALE = Number(__ENV.SCALE || '1');
const FOLLOWERS = Math.max(1000, Math.round(Number(__ENV.CELEB_FOLLOWERS || '1000000') * SCALE));

const photo = open('./assets/photo.jpg', 'b');

export const options = {
  scenarios: {
    telemetry: telemetryScenario('10m'),
    // t = 0: the post.
    post: { executor: 'shared-iterations', vus: 1, iterations: 1, exec: 'celebrityPosts', maxDuration: '10m' },
    // Then the crowd: feed reads, likes and comments on the post for ten minutes.
    readers: { executor: 'constant-arrival-rate', rate: 200, timeUnit: '1s', duration: '10m', startTime: '5s', preAllocatedVUs: 50, maxVUs: 300, exec: 'reactToPost' },
  },
  thresholds: {
    fanout_lag_ms: ['max<5000'], // Twitter: 1M followers in a median 3.5 s
    'http_req_duration{name:like}': ['p(99)<1000'],
    http_req_failed: ['rate<0.02'],
  },
};

interface Setup {
  celebrity: api.SeededUser;
  fans: api.SeededUser[];
}

export async function setup(): Promise<Setup> {
  // One account that (nearly) everyone follows: celebrityReach 0.99 of the seeded accounts.
  const seeded = await api.seed({ users: FOLLOWERS, avgFollows: 3, celebrities: 1, celebrityReach: 0.99, mediaPerUser: 0, seed: Number(__ENV.SEED || '1') });
  const celebrity = [...seeded.sample].sort((a, b) => (b.followed_by ?? 0) - (a.followed_by ?? 0))[0]!;
  const fans = await api.users(0, 2000);
  return { celebrity, fans: fans.filter((f) => f.id !== celebrity.id) };
}

export async function celebrityPosts(data: Setup): Promise<void> {
  check(await api.upload(data.celebrity.access_token, photo, 'Hello, everyone! #celebrity'), { 'post ok': (r) => r.status === 200 });
}

export async function reactToPost(data: Setup): Promise<void> {
  const fan = data.fans[Math.floor(Math.random() * data.fans.length)]!;
  const res = await api.recentMedia(fan.access_token, data.celebrity.id, 1);
  const items = res.status === 200 ? (res.json('data') as Array<{ id: string }>) : [];
  if (items.length === 0) return;
  const r = Math.random();
  if (r < 0.6) check(await api.like(fan.access_token, items[0]!.id), { 'like ok': (x) => x.status === 200 });
  else if (r < 0.7) check(await api.comment(fan.access_token, items[0]!.id, 'wow'), { 'comment ok': (x) => x.status === 200 });
  else check(await api.feed(fan.access_token), { 'feed ok': (x) => x.status === 200 });
}
