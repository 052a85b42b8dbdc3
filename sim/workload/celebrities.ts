// Where the celebrities of a population are, in signup order: shared by the live seeding
// (population.ts) and the simulator's population (full-population.ts), so that for one seed both
// modes put them at the same positions, on the same shards.

import { Prng } from '../engine/prng.ts';

/**
 * Which signup positions are celebrities, in increasing order: drawn first from the graph's stream
 * (`new Prng(seed).fork('population/graph')`), so the simulator's population (full-population.ts)
 * places its celebrities where a live seeding with the same seed does. Celebrities arrive early
 * (among the first 1% or so), as early adopters with big audiences did.
 */
export function celebrityPositions(rng: Prng, n: number, celebrities: number): number[] {
  const early = Math.min(n, Math.max(celebrities * 4, Math.ceil(n / 100)));
  const celebSet = new Set<number>();
  for (let budget = 0; celebSet.size < Math.min(celebrities, n) && budget < 100 * n; budget++) celebSet.add(rng.int(0, early - 1));
  return [...celebSet].sort((x, y) => x - y);
}

/** The stream celebrityPositions and the follow graph draw from. */
export function graphStream(seed: number): Prng {
  return new Prng(seed).fork('population/graph');
}
