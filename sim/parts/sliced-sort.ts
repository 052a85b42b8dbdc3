// Sorting that can be interrupted: a bottom-up merge sort written as a generator, so that sorting a
// million accounts runs in TimeSlicer slices instead of one long call (Array.prototype.sort cannot
// be paused). Stable, like Array.prototype.sort.

/** Merge steps between two yields (count): a few hundred microseconds of work. */
const STEPS_PER_YIELD = 8192;

/**
 * The indexes 0 … n-1 ordered by `less` (stable), yielding every few thousand steps; drive it with
 * TimeSlicer.run (sliced) or runToEnd (at once).
 */
export function* sortIndexes(n: number, less: (a: number, b: number) => boolean): Generator<void, Int32Array> {
  let src = new Int32Array(n);
  for (let i = 0; i < n; i++) src[i] = i;
  let dst = new Int32Array(n);
  let steps = 0;
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        // Take from the right run only when strictly smaller: equal keys keep their order.
        dst[k++] = less(src[j]!, src[i]!) ? src[j++]! : src[i++]!;
        if (++steps === STEPS_PER_YIELD) {
          steps = 0;
          yield;
        }
      }
      while (i < mid) dst[k++] = src[i++]!;
      while (j < hi) dst[k++] = src[j++]!;
    }
    [src, dst] = [dst, src];
    yield;
  }
  return src;
}
