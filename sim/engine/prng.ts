// A small seeded generator (sfc32 seeded through splitmix32). One seed is printed at start and
// every component forks its own stream from it by name, so a run replays exactly.

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function hashString(text: string): number {
  // FNV-1a, 32 bits.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  readonly seed: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new TypeError('seed must be a finite number');
    this.seed = seed >>> 0;
    const mix = splitmix32(this.seed);
    this.a = mix() | 0;
    this.b = mix() | 0;
    this.c = mix() | 0;
    this.d = mix() | 0;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** A child generator whose stream depends only on this seed and `name`. */
  fork(name: string): Prng {
    // Hashing seed and name together (not XOR) keeps nested forks order-dependent: a→b ≠ b→a.
    return new Prng(hashString(`${this.seed}/${name}`) || 1);
  }

  nextUint32(): number {
    // sfc32 in int32 arithmetic (| 0): the state stays in small-integer-or-int32 range, which V8
    // keeps unboxed; only the output is made unsigned. The stream is the same as with >>> 0.
    const a = this.a;
    const b = this.b;
    const c = this.c;
    const t = (((a + b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Exponentially distributed with the given mean. */
  exponential(mean: number): number {
    // 1 − u with u = k / 2^32 is exactly (2^32 − k) / 2^32: the same value as -log(1 - next()), in (0, 1].
    return -Math.log((4294967296 - this.nextUint32()) / 4294967296) * mean;
  }

  /**
   * Log-normal with the given median and σ of its logarithm (one Box–Muller normal per call; the
   * pair's second value is not kept, so each call takes two draws).
   */
  lognormal(median: number, sigma: number): number {
    const u = (4294967296 - this.nextUint32()) / 4294967296; // (0, 1]
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
    return median * Math.exp(sigma * z);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A lowercase hex string of `bytes` random bytes. */
  hex(bytes: number): string {
    let out = '';
    for (let i = 0; i < bytes; i += 4) out += this.nextUint32().toString(16).padStart(8, '0');
    return out.slice(0, bytes * 2);
  }
}

/** Parses a user-given seed: an integer, or any string (hashed). */
export function parseSeed(value: string | number): number {
  if (typeof value === 'number') return value >>> 0;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(BigInt(trimmed) & 0xffffffffn);
  return hashString(trimmed);
}
