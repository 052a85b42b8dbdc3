// calibrate — the fixed workload `scalegram calibrate` drives through the live stack: one VU, one
// request at a time (so nothing queues and each latency is the route's own cost on this machine),
// each iteration one request of every route the simulator models. `scalegram calibrate` fits each
// route's app CPU from these latencies and the work the topology counted for them.
// The feed is read three times: the first read fills the cache with the page's media, the next two
// find them there, so the feed's median is a warm read, as most feed reads of a running service are
// (its misses are charged as the model's queries and sets; the profile records the mix it measured).
// The population is small and fixed (minAccounts), so a profile does not depend on --scale.
// Run by hand: scalegram run scenarios/calibrate.ts --seed 1 -e ITERATIONS=50

import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

const ITERATIONS = Number(__ENV.ITERATIONS || '200');
if (!(Number.isInteger(ITERATIONS) && ITERATIONS >= 1 && ITERATIONS <= 100_000)) throw new Error(`-e ITERATIONS must be a whole number from 1 to 100000 (got "${__ENV.ITERATIONS}")`);
const photo = open('./assets/photo.jpg', 'b');

export const population: Population = { accounts: 2000, avgFollows: 10, celebrities: 2, mediaPerUser: 3, minAccounts: 2000 };

export const options = {
  scenarios: {
    // vus and iterations are the load itself: --scale would change them, so calibrate runs at scale 1.
    routes: { executor: 'shared-iterations', vus: 1, iterations: ITERATIONS, maxDuration: '60m', exec: 'everyRoute' },
  },
};

export const work = {
  everyRoute: [
    { op: 'signup', username: 'cal', fullName: 'Calibration user' },
    { op: 'follow', who: 'user', whom: 'user' },
    { op: 'upload', who: 'user', caption: 'Calibrating #scalegram' },
    { op: 'feed', who: 'user' },
    { op: 'feed', who: 'user' },
    { op: 'feed', who: 'user' },
    { op: 'user_media', who: 'user', owner: 'user', count: 5, item: 'any' },
    { op: 'media', who: 'user' },
    { op: 'like', who: 'user' },
    { op: 'comment', who: 'user', text: 'calibrated' },
  ],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  return seedPopulation(population);
}

export const everyRoute = iteration(work.everyRoute, { photo });
