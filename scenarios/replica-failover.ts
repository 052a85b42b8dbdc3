// replica-failover — replication lag spikes, then a primary fails and its replica is promoted.
// Stale reads during the spike and writes lost on promotion are counted, not hidden.
//
// Numbers (../shared/BRIEF.md, "Replicas"): every primary streams to a replica in another zone;
// reads may go to replicas and be stale by the lag. The spike (LAG_MS, default 5 s) and the failure
// time are assumed; write and read rates are a like-heavy mix (Oct 2011: 90 likes/s, scaled).
// Run: scalegram run scenarios/replica-failover.ts --speed 10 --scale 0.5

import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

export const topology = { extends: '2012-sharded', database: { readPolicy: 'replica' } };

// The base at full scale (× --scale; live runs seed at least 500 accounts).
export const population: Population = { accounts: 20_000, avgFollows: 20, celebrities: 3, mediaPerUser: 3, minAccounts: 500 };

const SPEED = Number(__ENV.SPEED || '1');
// The spike in real-world ms; like every duration it is compressed by --speed (live runs send
// LAG_MS / SPEED); at 9 m the lag is back to CALM_LAG_MS.
const LAG_MS = Number(__ENV.LAG_MS || '5000');
const CALM_LAG_MS = 20;

export const options = {
  scenarios: {
    telemetry: telemetryScenario('15m'),
    likes: { executor: 'constant-arrival-rate', rate: 90, timeUnit: '1s', duration: '15m', preAllocatedVUs: 30, maxVUs: 200, exec: 'likeSomething' },
    reads: { executor: 'constant-arrival-rate', rate: 300, timeUnit: '1s', duration: '15m', preAllocatedVUs: 50, maxVUs: 300, exec: 'readMedia' },
    // The lag spikes at 3 m; at 6 m, with the replica still behind, the primary fails and the
    // replica is promoted (the writes it had not applied are lost, and counted); at 9 m lag is back.
    lag_spike: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '3m', exec: 'spike' },
    failover: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '6m', exec: 'failPrimary' },
    lag_back: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '9m', exec: 'calm' },
  },
  thresholds: {
    replica_lag_ms: [`max<${(LAG_MS * 1.2) / SPEED}`], // no worse than the injected spike
    http_req_failed: ['rate<0.05'],
  },
};

export const work = {
  sampleTopology: [],
  // A like on one of an account's three latest photos (503 while its primary is down is expected).
  likeSomething: [
    { op: 'user_media', who: 'user', owner: 'user', count: 3, item: 'any' },
    { op: 'like', who: 'user', ok: [200, 503] },
  ],
  readMedia: [
    { op: 'user_media', who: 'user', owner: 'user', count: 3, item: 'any' },
    { op: 'media', who: 'user' },
  ],
  spike: [{ op: 'admin', action: 'db_lag', lagMs: LAG_MS }],
  failPrimary: [{ op: 'admin', action: 'db_fail', server: 'db-3' }],
  calm: [{ op: 'admin', action: 'db_lag', lagMs: CALM_LAG_MS }],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  return seedPopulation(population);
}

export const likeSomething = iteration(work.likeSomething);
export const readMedia = iteration(work.readMedia);
export const spike = iteration(work.spike);
export const calm = iteration(work.calm);
export const failPrimary = iteration(work.failPrimary);
