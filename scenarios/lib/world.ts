// A scenario's world on the server under test: its topology and seed, applied through the admin API
// (POST /_sim/reset) at the start of setup. Bundles written by `scalegram export-k6` call it, so
// that real k6 (or k6-operator's runner pods) run a scenario against the topology it was written
// for, as `scalegram run` does when it builds the server itself. Only k6 modules are used.
//
// Written synchronously, as k6 runs it: a bundle whose scenario has a synchronous setup keeps a
// synchronous setup, so that an error in it ends the run with k6's exit 107 (a rejected async setup
// is exit 255 under k6 v0.48). Scalegram's runner awaits these calls itself (its sync transform).

import { sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { adminHeaders, baseUrl } from './api.ts';

/** A segmented run's round of resets: its id, and whether this part is the one that reset. */
export interface Round {
  id: number;
  first: boolean;
}

/**
 * Resets the server to `topology` (a preset name or an object of changes to one, as a scenario
 * exports it; null when the scenario exports none: then the default preset, if the admin token is
 * given, else nothing is reset) and the seed given as `-e SEED=N` (else the server keeps its own),
 * unless `-e TOPOLOGY=<preset>` names another topology, `-e RESET=0` asks to run against the server
 * as it is, or `scalegram run` built the server for this run itself.
 *
 * k6-operator (without its cloud) runs setup in every runner pod: each pod sends its execution
 * segment and the sequence, and the server resets once for the run, answering every pod with it.
 */
export function applyWorld(topology: unknown, defaultTopology: string): Round | null {
  if (__ENV.SCALEGRAM_OWN_SERVER === '1' || __ENV.RESET === '0') return null;
  if (topology === null && !__ENV.TOPOLOGY && !__ENV.ADMIN_TOKEN) {
    console.log('scalegram: the server is not reset (the script exports no topology and no -e ADMIN_TOKEN is given)');
    return null;
  }
  const body: { topology: unknown; seed?: number; segment?: string; sequence?: string } = { topology: __ENV.TOPOLOGY || (topology ?? defaultTopology) };
  const { executionSegment, executionSegmentSequence } = exec.test.options as { executionSegment?: unknown; executionSegmentSequence?: unknown };
  if (typeof executionSegment === 'string' && typeof executionSegmentSequence === 'string') {
    body.segment = executionSegment;
    body.sequence = executionSegmentSequence;
  }
  if (__ENV.SEED) {
    const seed = Number(__ENV.SEED);
    if (!Number.isInteger(seed) || seed < 0) throw new Error(`SEED must be an integer ≥ 0 (got ${__ENV.SEED})`);
    body.seed = seed;
  }
  const res = http.post(`${baseUrl()}/_sim/reset`, JSON.stringify(body), { headers: adminHeaders(true), tags: { name: 'sim_reset' }, timeout: '600s' });
  if (res.status !== 200) {
    const hint = res.status === 401 ? ' (the admin API needs its token: -e ADMIN_TOKEN=<the token scalegram serve printed>)' : res.status === 409 ? '' : ' (-e RESET=0 runs against the server as it is)';
    throw new Error(`applying the scenario's topology (POST /_sim/reset) failed: ${res.status}${hint} ${String(res.body).slice(0, 300)}`);
  }
  const world = res.json() as unknown as { generation: number; seed: number; name: string; round?: Round };
  if (!world.round || world.round.first) console.log(`scalegram: the server now serves topology ${world.name} with seed ${world.seed} (generation ${world.generation})`);
  return world.round ?? null;
}

/**
 * The scenario's setup, once per run. Without a round (the run is not segmented) it is simply
 * called. The part that reset runs it and shares its data (or its error) through the server; the
 * others wait for that (within the run's setupTimeout, as k6 bounds every setup) and return it.
 */
export function setupOnce(round: Round | null, setup: () => unknown): unknown {
  if (!round) return setup();
  const url = `${baseUrl()}/_sim/reset/rounds/${round.id}/setup`;
  if (!round.first) {
    for (;;) {
      const res = http.get(url, { headers: adminHeaders(), tags: { name: 'sim_reset' } });
      if (res.status !== 200) throw new Error(`reading the setup data of the run's first part failed: ${res.status} ${String(res.body).slice(0, 300)}`);
      const shared = res.json() as unknown as { pending?: boolean; data?: unknown; error?: string };
      if (shared.error !== undefined) throw new Error(`the setup of the run's first part failed: ${shared.error}`);
      if (!shared.pending) return shared.data;
      sleep(0.5);
    }
  }
  const share = (body: { data: unknown } | { error: string }) => {
    const res = http.put(url, JSON.stringify(body), { headers: adminHeaders(true), tags: { name: 'sim_reset' }, timeout: '600s' });
    if (res.status !== 200) throw new Error(`sharing the setup data with the run's other parts failed: ${res.status} ${String(res.body).slice(0, 300)}`);
  };
  const failed = (e: unknown) => {
    share({ error: String(e).slice(0, 4000) });
    return e;
  };
  let data: unknown;
  try {
    data = setup();
  } catch (e) {
    throw failed(e);
  }
  // An async setup (the project's scenarios): shared when it has resolved.
  if (data instanceof Promise) {
    return data.then(
      (d: unknown) => {
        share({ data: d === undefined ? null : d });
        return d;
      },
      (e: unknown) => {
        throw failed(e);
      },
    );
  }
  share({ data: data === undefined ? null : data });
  return data;
}
