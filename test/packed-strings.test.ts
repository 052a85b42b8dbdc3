// The roster's packed string columns give back every string as it was pushed, across chunk edges.

import { describe, expect, it } from 'vitest';
import { PackedStrings } from '../sim/parts/packed-strings.ts';

describe('PackedStrings', () => {
  it('returns 10,000 strings of varied lengths (empty ones included) as pushed, across the 4,096-entry chunks', () => {
    const col = new PackedStrings();
    const values = Array.from({ length: 10_000 }, (_, i) => (i % 7 === 0 ? '' : `v${i}`.repeat(1 + (i % 3))));
    for (const v of values) col.push(v);
    expect(col.length).toBe(10_000);
    for (const i of [0, 1, 4095, 4096, 4097, 8191, 8192, 9999]) expect(col.get(i)).toBe(values[i]);
    expect(values.every((v, i) => col.get(i) === v)).toBe(true);
    expect(() => col.get(10_000)).toThrow(RangeError);
  });
});
