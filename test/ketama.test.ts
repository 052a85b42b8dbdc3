import crypto from 'node:crypto';
import { describe, it, expect } from 'vitest';
import { KetamaRing, ModuloRing, ketamaHash, md5FirstWord, type HashRing } from '../sim/parts/ketama.ts';

const NODES = ['cache-0', 'cache-1', 'cache-2', 'cache-3', 'cache-4', 'cache-5'];
const KEYS = Array.from({ length: 100_000 }, (_, i) => `key:${i}`);

function owners(ring: HashRing): Array<string | undefined> {
  return KEYS.map((k) => ring.nodeFor(k));
}

function remapped(before: HashRing | Array<string | undefined>, after: HashRing): string[] {
  const was = Array.isArray(before) ? before : owners(before);
  return KEYS.filter((k, i) => was[i] !== after.nodeFor(k));
}

describe('KetamaRing', () => {
  it('puts 160 points per node on the ring by default, and exactly pointsPerNode when not a multiple of 4', () => {
    expect(new KetamaRing(NODES).pointCount).toBe(960);
    expect(new KetamaRing(['a']).pointCount).toBe(160);
    expect(new KetamaRing(NODES, 10).pointCount).toBe(60);
  });

  it('hashes keys as libketama does: md5, first 4 bytes little-endian', () => {
    // md5("hello") = 5d41402abc4b2a76…; bytes 5d 41 40 2a read little-endian.
    expect(ketamaHash('hello')).toBe(0x2a40415d);
  });

  it('computes md5 in JavaScript for short ASCII keys exactly as node:crypto does, and falls back for the rest', () => {
    const ref = (k: string) => crypto.createHash('md5').update(k).digest().readUInt32LE(0);
    const keys = [...KEYS.slice(0, 20_000), ...['m:', 'u:', 't:', 'r:'].map((p) => `${p}${2 ** 30 - 1}`), ''];
    for (let n = 1; n <= 64; n++) keys.push('abcdefghij'.repeat(7).slice(0, n));
    let checked = 0;
    for (const k of keys) {
      const js = md5FirstWord(k);
      if (k.length <= 55) {
        expect(js, k).toBe(ref(k));
        checked++;
      } else expect(js, k).toBe(-1);
      expect(ketamaHash(k), k).toBe(ref(k));
    }
    expect(checked).toBe(20_000 + 4 + 1 + 55);
    expect(md5FirstWord('café')).toBe(-1);
    expect(ketamaHash('café')).toBe(ref('café'));
  });

  it('places known keys on the nodes an independent libketama implementation chose', () => {
    // Computed once with a separate Python implementation of libketama (hashlib.md5, bisect).
    const ring = new KetamaRing(NODES);
    expect(ring.nodeFor('user:1')).toBe('cache-2');
    expect(ring.nodeFor('media:42')).toBe('cache-5');
    expect(ring.nodeFor('feed:1000')).toBe('cache-2');
    expect(ring.nodeFor('hello')).toBe('cache-5');
  });

  it('maps every key the same way in two ring instances, whatever the order of the node list', () => {
    const a = new KetamaRing(NODES);
    const b = new KetamaRing([...NODES].reverse());
    expect(remapped(a, b)).toHaveLength(0);
  });

  it('spreads 100k keys over 6 nodes within ±25% of the mean', () => {
    const ring = new KetamaRing(NODES);
    const counts = new Map<string, number>();
    for (const k of KEYS) counts.set(ring.nodeFor(k)!, (counts.get(ring.nodeFor(k)!) ?? 0) + 1);
    expect(counts.size).toBe(6);
    const mean = KEYS.length / 6;
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(mean * 0.75);
      expect(n).toBeLessThan(mean * 1.25);
    }
  });

  it('moves about 1/6 of keys when one of 6 nodes leaves, all of them from the leaving node', () => {
    const before = new KetamaRing(NODES);
    const was = new Map(KEYS.map((k) => [k, before.nodeFor(k)]));
    for (const gone of NODES) {
      const after = before.without(gone);
      const moved = remapped([...was.values()], after);
      expect(moved.length / KEYS.length).toBeGreaterThan(0.12);
      expect(moved.length / KEYS.length).toBeLessThan(0.22);
      expect(moved.every((k) => was.get(k) === gone)).toBe(true);
      // The leaving node's keys scatter over its ring neighbours rather than landing on one node.
      expect(new Set(moved.map((k) => after.nodeFor(k))).size).toBe(5);
    }
  });

  it('moves only keys onto a node that joins, and gives them back when it leaves', () => {
    const five = new KetamaRing(NODES.slice(0, 5));
    const six = five.with('cache-5');
    const moved = remapped(five, six);
    expect(moved.every((k) => six.nodeFor(k) === 'cache-5')).toBe(true);
    expect(remapped(five, six.without('cache-5'))).toHaveLength(0);
  });

  it('returns undefined on an empty ring and wraps past the last point to the first', () => {
    expect(new KetamaRing([]).nodeFor('x')).toBeUndefined();
    // With one point per node, a key hashing above every point belongs to the node of the lowest point.
    const ring = new KetamaRing(NODES, 1);
    const top = Math.max(...NODES.map((n) => ketamaHash(`${n}-0`)));
    const lowest = NODES.reduce((a, b) => (ketamaHash(`${a}-0`) < ketamaHash(`${b}-0`) ? a : b));
    const above = KEYS.find((k) => ketamaHash(k) > top)!;
    expect(above).toBeDefined();
    expect(ring.nodeFor(above)).toBe(lowest);
  });
});

describe('ModuloRing', () => {
  it('moves more than 70% of keys when one of 6 nodes leaves', () => {
    const before = new ModuloRing(NODES);
    const moved = remapped(before, before.without('cache-3'));
    expect(moved.length / KEYS.length).toBeGreaterThan(0.7);
  });

  it('is deterministic across instances and empty-safe', () => {
    expect(remapped(new ModuloRing(NODES), new ModuloRing(NODES))).toHaveLength(0);
    expect(new ModuloRing([]).nodeFor('x')).toBeUndefined();
  });
});
