// Key placement for the memcached stand-in: libketama's consistent-hash ring, and the naive
// hash-mod-N placement it replaced, behind one interface so a scenario can show the difference.

import crypto from 'node:crypto';

/** Where a client sends a key. Rings are immutable: membership changes return a new ring. */
export interface HashRing {
  /** Nodes on the ring, in the order they were given. */
  readonly nodes: readonly string[];
  /** The node that owns `key`, or undefined when the ring is empty. */
  nodeFor(key: string): string | undefined;
  /** The node that owns a key whose ketamaHash is `h` (for callers that remember hashes themselves). */
  nodeForHash(h: number): string | undefined;
  /** A ring with `node` added (this ring if it is already there). */
  with(node: string): HashRing;
  /** A ring without `node` (this ring if it is not there). */
  without(node: string): HashRing;
}

// crypto.hash (Node ≥ 20.12) is ~1.5× faster than createHash for short keys, and key lookup is the
// cache's hot path; engines allow 20.6, so fall back.
const md5: (text: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('md5', text, 'buffer')
    : (text) => crypto.createHash('md5').update(text).digest();

/** Hashes remembered per key (count); md5 dominates a cache lookup, and hot keys repeat. */
const HASH_MEMO_LIMIT = 200_000;
const hashMemo = new Map<string, number>();

/** ketamaHash, remembered for recently hashed keys (the hash of a key never changes). */
export function ketamaHashCached(key: string): number {
  let h = hashMemo.get(key);
  if (h === undefined) {
    h = ketamaHash(key);
    if (hashMemo.size >= HASH_MEMO_LIMIT) hashMemo.clear();
    hashMemo.set(key, h);
  }
  return h;
}

/** libketama's key hash: the first 4 bytes of the md5 digest, little-endian. */
export function ketamaHash(key: string): number {
  const h = md5FirstWord(key);
  return h >= 0 ? h : md5(key).readUInt32LE(0);
}

// MD5 (RFC 1321) in JavaScript for the keys a cache sees (short ASCII: one 64-byte block), giving
// only the digest's first little-endian word, which is all ketama reads. For such keys it is
// ~5× cheaper than a call into node:crypto, whose per-call overhead dominates a 10-byte input;
// test/ketama.test.ts checks it against node:crypto on many keys.
const MD5_K = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);
const MD5_S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const md5Block = new Int32Array(16);

/** The first little-endian word of md5(key) for ASCII keys of at most 55 characters; −1 otherwise. */
export function md5FirstWord(key: string): number {
  const n = key.length;
  if (n > 55) return -1;
  const x = md5Block;
  x.fill(0);
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c > 0x7f) return -1;
    x[i >> 2]! |= c << ((i & 3) << 3);
  }
  x[n >> 2]! |= 0x80 << ((n & 3) << 3);
  x[14] = n << 3;
  let a = 0x67452301;
  let b = 0xefcdab89 | 0;
  let c = 0x98badcfe | 0;
  let d = 0x10325476;
  for (let i = 0; i < 64; i++) {
    let f: number;
    let g: number;
    if (i < 16) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (i < 32) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (i < 48) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    const t = d;
    d = c;
    c = b;
    const sum = (a + f + MD5_K[i]! + x[g]!) | 0;
    const s = MD5_S[((i >> 4) << 2) | (i & 3)]!;
    b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
    a = t;
  }
  return (a + 0x67452301) >>> 0;
}

/** The index of the first of the ring's sorted `points` at or after `h`; past the last point the ring wraps to the first (0). */
export function pointFor(points: Uint32Array, h: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

/**
 * libketama's ring: node `name` gets points from md5(`${name}-${i}`), four little-endian uint32s
 * per digest, so the default 160 points take 40 digests. A point count that is not a multiple of
 * 4 uses only the first points of the last digest, so a node always has exactly `pointsPerNode`.
 * Points depend only on node names, so every client with the same node list agrees on placement
 * whatever order the list is in; equal points (rare) are ordered by node name for the same reason.
 */
export class KetamaRing implements HashRing {
  readonly nodes: readonly string[];
  private readonly points: Uint32Array;
  private readonly owners: string[];

  constructor(
    nodes: readonly string[],
    /** Points on the ring per node (count); libketama uses 160. */
    readonly pointsPerNode = 160,
  ) {
    if (!Number.isInteger(pointsPerNode) || pointsPerNode < 1) throw new RangeError(`pointsPerNode must be a positive integer (got ${pointsPerNode})`);
    this.nodes = [...new Set(nodes)];
    const all: Array<{ point: number; node: string }> = [];
    for (const node of this.nodes) {
      for (let i = 0; i * 4 < pointsPerNode; i++) {
        const digest = md5(`${node}-${i}`);
        for (let h = 0; h < 4 && i * 4 + h < pointsPerNode; h++) all.push({ point: digest.readUInt32LE(h * 4), node });
      }
    }
    all.sort((a, b) => a.point - b.point || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    this.points = Uint32Array.from(all, (p) => p.point);
    this.owners = all.map((p) => p.node);
  }

  /** The ring's points in order and the node each belongs to (for a caller that keeps its own table). */
  table(): { points: Uint32Array; owners: readonly string[] } {
    return { points: this.points, owners: this.owners };
  }

  /** Points on the ring, over all nodes. */
  get pointCount(): number {
    return this.points.length;
  }

  nodeFor(key: string): string | undefined {
    if (this.points.length === 0) return undefined;
    return this.nodeForHash(ketamaHashCached(key));
  }

  nodeForHash(h: number): string | undefined {
    if (this.points.length === 0) return undefined;
    return this.owners[pointFor(this.points, h)];
  }

  with(node: string): KetamaRing {
    return this.nodes.includes(node) ? this : new KetamaRing([...this.nodes, node], this.pointsPerNode);
  }

  without(node: string): KetamaRing {
    return this.nodes.includes(node) ? new KetamaRing(this.nodes.filter((n) => n !== node), this.pointsPerNode) : this;
  }
}

/** hash(key) mod N over the node list: even, but changing N moves almost every key. */
export class ModuloRing implements HashRing {
  readonly nodes: readonly string[];

  constructor(nodes: readonly string[]) {
    this.nodes = [...new Set(nodes)];
  }

  nodeFor(key: string): string | undefined {
    if (this.nodes.length === 0) return undefined;
    return this.nodes[ketamaHashCached(key) % this.nodes.length];
  }

  nodeForHash(h: number): string | undefined {
    if (this.nodes.length === 0) return undefined;
    return this.nodes[h % this.nodes.length];
  }

  with(node: string): ModuloRing {
    return this.nodes.includes(node) ? this : new ModuloRing([...this.nodes, node]);
  }

  without(node: string): ModuloRing {
    return this.nodes.includes(node) ? new ModuloRing(this.nodes.filter((n) => n !== node)) : this;
  }
}
