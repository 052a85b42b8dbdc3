// celebrity-post — an account with a very large following posts. The fan-out queue backs up,
// delivery lag grows, and the likes and comments that follow land on one hot shard.
//
// Numbers (../shared/BRIEF.md, "Feed fan-out"): Twitter delivered one post to 1M followers in a
// median 3.5 s (p99 up to 5 min), in chunks of ~4K; lists are capped at 800. Here the celebrity has
// CELEB_FOLLOWERS × --scale followers (`population`: 1,000,000 at full scale; live runs seed at
// least 1,000), seeded through the bulk path.
// Run: scalegram run scenarios/celebrity-post.ts --scale 0.1

import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

// One account that (nearly) everyone follows: celebrityReach 0.99 of the accounts.
export const population: Population = {
  accounts: Number(__ENV.CELEB_FOLLOWERS || '1000000'),
  avgFollows: 3,
  celebrities: 1,
  celebrityReach: 0.99,
  mediaPerUser: 0,
  minAccounts: 1000,
};

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

export const work = {
  sampleTopology: [],
  celebrityPosts: [{ op: 'upload', who: 'celebrity', caption: 'Hello, everyone! #celebrity', check: 'post ok' }],
  // A fan opens the celebrity's latest photo, then likes it, comments on it, or reads the feed.
  reactToPost: [
    { op: 'user_media', who: 'user', owner: 'celebrity', count: 1 },
    {
      op: 'choice',
      branches: [
        { p: 0.6, steps: [{ op: 'like', who: 'user' }] },
        { p: 0.1, steps: [{ op: 'comment', who: 'user', text: 'wow' }] },
        { p: 0.3, steps: [{ op: 'feed', who: 'user' }] },
      ],
    },
  ],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  return seedPopulation(population, { excludeCelebrities: true });
}

export const celebrityPosts = iteration(work.celebrityPosts, { photo });
export const reactToPost = iteration(work.reactToPost);
