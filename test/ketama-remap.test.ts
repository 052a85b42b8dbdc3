// Why memcached clients moved to ketama: removing one of N nodes remaps about 1/N of the keys
// (only the leaving node's), while hash-mod-N placement remaps nearly all of them. Checked for
// N = 4, 6 and 10 over 100,000 keys, removing each node in turn.

import { describe, expect, it } from 'vitest';
import { KetamaRing, ModuloRing, type HashRing } from '../sim/parts/ketama.ts';

const KEYS = Array.from({ length: 100_000 }, (_, i) => `key:${i}`);

/** Fraction of keys whose node changes between two rings, and whether all of them came from `from`. */
function remap(before: HashRing, after: HashRing, from: string): { fraction: number; onlyFrom: boolean } {
  let moved = 0;
  let onlyFrom = true;
  for (const k of KEYS) {
    const was = before.nodeFor(k);
    if (was !== after.nodeFor(k)) {
      moved++;
      if (was !== from) onlyFrom = false;
    }
  }
  return { fraction: moved / KEYS.length, onlyFrom };
}

describe.each([4, 6, 10])('removing one of %i nodes', (n) => {
  const nodes = Array.from({ length: n }, (_, i) => `cache-${i}`);

  it(`ketama remaps 1/${n} of 100,000 keys ± 20%, all of them from the node removed (each node in turn)`, () => {
    const ring = new KetamaRing(nodes);
    for (const gone of nodes) {
      const { fraction, onlyFrom } = remap(ring, ring.without(gone), gone);
      expect(fraction, `without ${gone}`).toBeGreaterThan((1 / n) * 0.8);
      expect(fraction, `without ${gone}`).toBeLessThan((1 / n) * 1.2);
      expect(onlyFrom).toBe(true);
    }
  });

  it(`modulo-${n} remaps nearly all keys: at least (N−1)/N − 5% = ${(100 * ((n - 1) / n - 0.05)).toFixed(0)}% (each node in turn)`, () => {
    const ring = new ModuloRing(nodes);
    for (const gone of nodes) {
      const { fraction } = remap(ring, ring.without(gone), gone);
      expect(fraction, `without ${gone}`).toBeGreaterThanOrEqual((n - 1) / n - 0.05);
    }
  });
});
