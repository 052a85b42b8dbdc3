// A scenario's world on the server under test: its topology and seed, applied through the admin API
// (POST /_sim/reset) at the start of setup. Bundles written by `scalegram export-k6` call it, so
// that real k6 (or k6-operator's runner pods) run a scenario against the topology it was written
// for, as `scalegram run` does when it builds the server itself. Only k6 modules are used.

import { sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { adminHeaders, baseUrl } from './api.ts';

/**
 * Resets the server to `topology` (a preset name or an object of changes to one, as a scenario
 * exports it) and the seed given as `-e SEED=N` (else the server keeps its own), unless
 * `-e TOPOLOGY=<preset>` names another topology, `-e RESET=0` asks to run against the server as it
 * is, or `scalegram run` built the server for this run itself.
 *
 * k6-operator (without its cloud) runs setup in every runner pod: each pod sends its execution
 * segment and the sequence, and the server resets once for the run, answering every pod with it.
 */
export async function applyWorld(topology: unknown): Promise<Round | null> {
  if (__ENV.SCALEGRAM_OWN_SERVER === '1' || __ENV.RESET === '0') return null;
  const body: { topology: unknown; seed?: number; segment?: string; sequence?: string } = { topology: __ENV.TOPOLOGY || topology };
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
  const res = await http.post(`${baseUrl()}/_sim/reset`, JSON.stringify(body), { headers: adminHeaders(true), tags: { name: 'sim_reset' }, timeout: '600s' });
  if (res.status !== 200) {
    const hint = res.status === 401 ? ' (the admin API needs its token: -e ADMIN_TOKEN=<the token scalegram serve printed>)' : res.status === 409 ? '' : ' (-e RESET=0 runs against the server as it is)';
    throw new Error(`applying the scenario's topology (POST /_sim/reset) failed: ${res.status}${hint} ${String(res.body).slice(0, 300)}`);
  }
  const world = res.json() as unknown as { generation: number; seed: number; name: string; round?: Round };
  if (!world.round || world.round.first) console.log(`scalegram: the server now serves topology ${world.name} with seed ${world.seed} (generation ${world.generation})`);
  return world.round ?? null;
}

/** A segmented run's round of resets: its id, and whether this part is the one that reset. */
export interface Round {
  id: number;
  first: boolean;
}

/**
 * The scenario's setup, once per run: run here when this part reset the server (or the run is not
 * segmented), its data shared through the server with the other parts; fetched from there by the
 * others, which wait for it (within the run's setupTimeout, as k6 bounds every setup).
 */
export async function setupOnce(round: Round | null, setup: () => unknown): Promise<unknown> {
  const url = round ? `${baseUrl()}/_sim/reset/rounds/${round.id}/setup` : '';
  if (round && !round.first) {
    for (;;) {
      const res = await http.get(url, { headers: adminHeaders(), tags: { name: 'sim_reset' } });
      if (res.status !== 200) throw new Error(`reading the setup data of the run's first part failed: ${res.status} ${String(res.body).slice(0, 300)}`);
      const shared = res.json() as unknown as { pending?: boolean; data?: unknown; error?: string };
      if (shared.error !== undefined) throw new Error(`the setup of the run's first part failed: ${shared.error}`);
      if (!shared.pending) return shared.data;
      await sleep(0.5);
    }
  }
  let data: unknown;
  try {
    data = await setup();
  } catch (e) {
    if (round) await http.put(url, JSON.stringify({ error: String(e).slice(0, 4000) }), { headers: adminHeaders(true), tags: { name: 'sim_reset' } });
    throw e;
  }
  if (round) {
    const res = await http.put(url, JSON.stringify({ data: data === undefined ? null : data }), { headers: adminHeaders(true), tags: { name: 'sim_reset' }, timeout: '600s' });
    if (res.status !== 200) throw new Error(`sharing the setup data with the run's other parts failed: ${res.status} ${String(res.body).slice(0, 300)}`);
  }
  return data;
}
