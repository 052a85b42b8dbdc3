// launch-day — 6 October 2010: Instagram launches on the App Store and 25,000 people sign up on the
// first day, all on one small machine. What saturates first?
//
// Numbers (../shared/BRIEF.md, "Load figures" and "Vertical partitioning came first"):
// - 25k signups on launch day: the arrival rate below ramps to a peak and back so that the day's
//   total is ≈ 25,000 × --scale (peak 28/min for 6 h around midday; the shape is assumed).
// - One box, one database (the 2010-single preset, exported below).
// - Each new user posts a first photo and reads the (small) feed a few times: assumed.
// Run: scalegram run scenarios/launch-day.ts --speed 720

import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

export const topology = '2010-single';

const photo = open('./assets/photo.jpg', 'b');

// The founders and friends who had the beta: a few hundred accounts, whatever the scale (minAccounts).
export const population: Population = { accounts: 300, avgFollows: 10, celebrities: 2, mediaPerUser: 3, minAccounts: 300 };
const FEED_READS = 3; // per new user on the first day (assumed)

export const options = {
  scenarios: {
    telemetry: telemetryScenario('24h'),
    signups: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1m',
      // Signups per minute over the day (k6 rates are integers, hence per minute): ≈ 25,200 in 24 h.
      stages: [
        { target: 9, duration: '3h' }, //    810
        { target: 28, duration: '3h' }, //  3,330
        { target: 28, duration: '6h' }, // 10,080
        { target: 15, duration: '6h' }, //  7,740
        { target: 3, duration: '6h' }, //   3,240
      ],
      preAllocatedVUs: 10,
      maxVUs: 100,
      exec: 'newUser',
    },
  },
  thresholds: {
    'http_req_duration{name:signup}': ['p(95)<1000'],
    'http_req_duration{name:upload}': ['p(95)<3000'],
    http_req_failed: ['rate<0.01'],
  },
};

export const work = {
  sampleTopology: [],
  newUser: [
    { op: 'signup', username: 'day1', fullName: 'Day one' },
    { op: 'follow', who: 'new', whom: 'user' },
    { op: 'upload', who: 'new', caption: 'My first #instagram' },
    ...Array.from({ length: FEED_READS }, () => ({ op: 'feed', who: 'new' }) as const),
  ],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  // New users befriend the sample of the seeding answer (20 accounts, celebrities first).
  return seedPopulation(population, { roster: 'sample' });
}

export const newUser = iteration(work.newUser, { photo });
