// calibrate-idle — the wake-up `scalegram calibrate` measures: one VU reading warm feed pages, first
// back to back, then each after 5 ms of idle, then each after 50 ms, then pairs after 50 ms (tagged
// name:feed_first and name:feed_next, the second sent as soon as the first is answered). A request
// that finds the server idle is slower than one that follows another at once: the event loops and
// the CPU wake up, their caches are cold, and the cold state wears off over the next requests' work,
// not with the first (measured apart, most of it is the server's own: its time for a warm read goes
// from 0.25 ms back to back to 1.8 ms after 50 ms of idle). The differences of the medians are the
// wake-up the simulator adds to a request by its app worker's idle time and the requests since
// (capacity.wakeMs, wakeTauMs, wakeShare).
// The population is small, so every page is warm after the first few reads.
// Run by hand: scalegram run scenarios/calibrate-idle.ts --seed 1

import http from 'k6/http';
import { sleep } from 'k6';
import { baseUrl } from './lib/api.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

const SECONDS = Number(__ENV.SECONDS || '3');
if (!(SECONDS >= 1 && SECONDS <= 600)) throw new Error(`-e SECONDS must be a number from 1 to 600 (got "${__ENV.SECONDS}")`);
/** The two idle times measured (seconds; `scalegram calibrate` gives its own): short, and long enough for the whole wake-up. */
const IDLE_S = { short: Number(__ENV.SHORT_IDLE_S || '0.005'), long: Number(__ENV.LONG_IDLE_S || '0.05') };
for (const [k, v] of Object.entries(IDLE_S)) if (!(v > 0 && v <= 10)) throw new Error(`-e ${k.toUpperCase()}_IDLE_S must be a number of seconds from 0 to 10 (got ${v})`);

export const population: Population = { accounts: 50, avgFollows: 10, celebrities: 1, mediaPerUser: 3, minAccounts: 50 };

export const options = {
  scenarios: {
    back_to_back: { executor: 'constant-vus', vus: 1, duration: `${SECONDS}s`, exec: 'backToBack' },
    idle_short: { executor: 'constant-vus', vus: 1, duration: `${SECONDS}s`, startTime: `${SECONDS}s`, exec: 'afterShortIdle' },
    // Fewer requests fit in the long idle's phase: it runs twice as long.
    idle_long: { executor: 'constant-vus', vus: 1, duration: `${2 * SECONDS}s`, startTime: `${2 * SECONDS}s`, exec: 'afterLongIdle' },
    idle_burst: { executor: 'constant-vus', vus: 1, duration: `${2 * SECONDS}s`, startTime: `${4 * SECONDS}s`, exec: 'pairAfterLongIdle' },
  },
};

export const work = {
  backToBack: [{ op: 'feed', who: 'user' }],
  afterShortIdle: [{ op: 'sleep', seconds: IDLE_S.short }, { op: 'feed', who: 'user' }],
  afterLongIdle: [{ op: 'sleep', seconds: IDLE_S.long }, { op: 'feed', who: 'user' }],
  pairAfterLongIdle: [{ op: 'sleep', seconds: IDLE_S.long }, { op: 'feed', who: 'user' }, { op: 'feed', who: 'user' }],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  return seedPopulation(population);
}

export const backToBack = iteration(work.backToBack);
export const afterShortIdle = iteration(work.afterShortIdle);
export const afterLongIdle = iteration(work.afterLongIdle);

/** work.pairAfterLongIdle, its reads tagged name:feed_first and name:feed_next so that each one's latency is measured apart. */
export async function pairAfterLongIdle(data: SetupData): Promise<void> {
  await sleep(IDLE_S.long);
  const user = data.users[Math.floor(Math.random() * data.users.length)]!;
  const url = `${baseUrl()}/v1/users/self/feed?count=20&access_token=${user.access_token}`;
  await http.get(url, { tags: { name: 'feed_first' } });
  await http.get(url, { tags: { name: 'feed_next' } });
}
