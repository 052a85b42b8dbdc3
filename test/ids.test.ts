// Instagram's 64-bit ids: the 41|13|10 bit layout, routing by shard, per-(table, shard) sequences
// that keep increasing on a frozen clock, shortcodes, and the bounds of what counts as an id.

import { describe, expect, it } from 'vitest';
import { isSimError } from '../sim/engine/errors.ts';
import {
  INSTAGRAM_EPOCH_MS,
  IdGenerator,
  MAX_LOGICAL_SHARDS,
  decodeId,
  encodeId,
  fromShortcode,
  isIdString,
  minIdAt,
  shardOf,
  toShortcode,
} from '../sim/parts/ids.ts';
import { Prng } from '../sim/engine/prng.ts';

describe('id layout', () => {
  it('uses Instagram epoch 1314220021721 (2011-08-24 UTC) and 8192 logical shards', () => {
    expect(INSTAGRAM_EPOCH_MS).toBe(1314220021721);
    expect(new Date(INSTAGRAM_EPOCH_MS).toISOString()).toBe('2011-08-24T21:07:01.721Z');
    expect(MAX_LOGICAL_SHARDS).toBe(8192);
  });

  it("encodes Instagram's worked example: 1387263000 ms, shard 1341, sequence 5001 → 11637205501278089", () => {
    // From the 2011 Instagram engineering post: 5001 % 1024 = 905 lands in the low 10 bits.
    const id = encodeId(INSTAGRAM_EPOCH_MS + 1387263000, 1341, 5001);
    expect(id).toBe(11637205501278089n);
    expect(id).toBe((1387263000n << 23n) | (1341n << 10n) | 905n);
    expect(decodeId(id)).toEqual({ timestampMs: INSTAGRAM_EPOCH_MS + 1387263000, shardId: 1341, sequence: 905 });
  });

  it('puts 41 bits of time, 13 of shard and 10 of sequence side by side without overlap', () => {
    expect(encodeId(INSTAGRAM_EPOCH_MS, 0, 1)).toBe(1n);
    expect(encodeId(INSTAGRAM_EPOCH_MS, 0, 1023)).toBe(1023n);
    expect(encodeId(INSTAGRAM_EPOCH_MS, 1, 0)).toBe(1024n);
    expect(encodeId(INSTAGRAM_EPOCH_MS, 8191, 0)).toBe(8191n << 10n);
    expect(encodeId(INSTAGRAM_EPOCH_MS + 1, 0, 0)).toBe(1n << 23n);
    expect(encodeId(INSTAGRAM_EPOCH_MS + 1, 8191, 1023)).toBe((1n << 23n) | (8191n << 10n) | 1023n);
  });

  it('round-trips 500 seeded (time, shard, sequence) triples through encode and decode, as bigint and as string', () => {
    const rng = new Prng(20120409);
    for (let i = 0; i < 500; i++) {
      const timestampMs = INSTAGRAM_EPOCH_MS + rng.int(0, 2 ** 39);
      const shardId = rng.int(0, 8191);
      const sequence = rng.int(0, 1023);
      const id = encodeId(timestampMs, shardId, sequence);
      expect(decodeId(id)).toEqual({ timestampMs, shardId, sequence });
      expect(decodeId(id.toString())).toEqual({ timestampMs, shardId, sequence });
      expect(shardOf(id)).toBe(shardId);
      expect(shardOf(id.toString())).toBe(shardId);
    }
  });

  it('honours a custom epoch', () => {
    const epoch = 1_300_000_000_000;
    const id = encodeId(epoch + 1000, 7, 3, epoch);
    expect(id).toBe((1000n << 23n) | (7n << 10n) | 3n);
    expect(decodeId(id, epoch).timestampMs).toBe(epoch + 1000);
  });

  it('rejects times before the epoch and shards outside 13 bits with SG_ERR_INVALID_PARAM', () => {
    for (const bad of [
      () => encodeId(INSTAGRAM_EPOCH_MS - 1, 0, 0),
      () => encodeId(INSTAGRAM_EPOCH_MS + 2 ** 41, 0, 0),
      () => encodeId(INSTAGRAM_EPOCH_MS, 8192, 0),
      () => encodeId(INSTAGRAM_EPOCH_MS, -1, 0),
      () => encodeId(INSTAGRAM_EPOCH_MS, 1.5, 0),
    ]) {
      let caught: unknown;
      try {
        bad();
      } catch (e) {
        caught = e;
      }
      expect(isSimError(caught, 'SG_ERR_INVALID_PARAM')).toBe(true);
    }
  });

  // Regression: 41 bits of time | 13 | 10 is 64 bits, but ids live in signed 64-bit columns and
  // isIdString caps them below 2^63. encodeId used to mint ids ≥ 2^63 from 2^40 ms after the epoch
  // (Feb 2046 by default; at once with `idEpochMs: 0`), which SQLite refused to bind.
  it('every id encodeId returns fits a signed 64-bit integer (or encodeId refuses to mint it)', () => {
    let id: bigint | null = null;
    try {
      id = encodeId(INSTAGRAM_EPOCH_MS + 2 ** 40, 1, 0);
    } catch (e) {
      expect(isSimError(e, 'SG_ERR_INVALID_PARAM')).toBe(true);
    }
    if (id !== null) {
      expect(id < 2n ** 63n).toBe(true);
      expect(isIdString(id.toString())).toBe(true);
    }
  });

  it('minIdAt is the smallest id of a millisecond: every id minted then is ≥ it and every earlier id is <', () => {
    const t = INSTAGRAM_EPOCH_MS + 123_456_789;
    expect(minIdAt(t)).toBe(encodeId(t, 0, 0));
    expect(encodeId(t, 8191, 1023) < minIdAt(t + 1)).toBe(true);
    expect(encodeId(t - 1, 8191, 1023) < minIdAt(t)).toBe(true);
    expect(minIdAt(INSTAGRAM_EPOCH_MS - 5000)).toBe(0n);
  });
});

describe('IdGenerator', () => {
  it('mints 3000 strictly increasing ids per (table, shard) on a frozen clock, spilling into the next ms after 1024', () => {
    const frozen = INSTAGRAM_EPOCH_MS + 86_400_000;
    const gen = new IdGenerator(() => frozen);
    let prev = -1n;
    const seen = new Set<bigint>();
    for (let i = 0; i < 3000; i++) {
      const id = gen.next('media', 42);
      expect(id > prev).toBe(true);
      expect(shardOf(id)).toBe(42);
      seen.add(id);
      prev = id;
    }
    expect(seen.size).toBe(3000);
    const last = decodeId(prev);
    // 3000 ids = two full ms of 1024 plus 952 in a third.
    expect(last.timestampMs).toBe(frozen + 2);
    expect(last.sequence).toBe(3000 - 2 * 1024 - 1);
  });

  it('processes that share shards split the sequences: 3 processes × 1000 ids in one frozen ms, none the same, each its residue, ⌈1024/3⌉ per ms each', () => {
    const frozen = INSTAGRAM_EPOCH_MS + 7_000_000;
    const gens = [0, 1, 2].map((index) => new IdGenerator(() => frozen, INSTAGRAM_EPOCH_MS, { index, count: 3 }));
    const all = new Set<bigint>();
    for (const [index, gen] of gens.entries()) {
      let prev = -1n;
      for (let i = 0; i < 1000; i++) {
        const id = gen.next('comments', 77);
        expect(id > prev).toBe(true);
        prev = id;
        const d = decodeId(id);
        expect(d.shardId).toBe(77);
        expect(d.sequence % 3).toBe(index);
        all.add(id);
      }
      // Sequences i, i+3, … below 1024: 342 in the first ms for process 0 (0 … 1023), 341 for 1 and 2.
      const perMs = index === 0 ? 342 : 341;
      expect(decodeId(prev).timestampMs).toBe(frozen + Math.floor(999 / perMs));
    }
    expect(all.size).toBe(3000);
  });

  it('refuses a partition that is not one of 1–1024 processes', () => {
    for (const p of [{ index: 2, count: 2 }, { index: -1, count: 2 }, { index: 0, count: 0 }, { index: 0, count: 1025 }, { index: 0.5, count: 2 }]) {
      expect(() => new IdGenerator(() => INSTAGRAM_EPOCH_MS, INSTAGRAM_EPOCH_MS, p)).toThrow(/id partition/);
    }
  });

  it('keeps a separate sequence per table and per shard', () => {
    const now = INSTAGRAM_EPOCH_MS + 10_000;
    const gen = new IdGenerator(() => now);
    expect(decodeId(gen.next('media', 1)).sequence).toBe(0);
    expect(decodeId(gen.next('media', 1)).sequence).toBe(1);
    expect(decodeId(gen.next('likes', 1)).sequence).toBe(0);
    expect(decodeId(gen.next('media', 2)).sequence).toBe(0);
    expect(decodeId(gen.next('media', 1)).sequence).toBe(2);
  });

  it('restarts the sequence at 0 when the clock moves on, and ids follow time order across shards', () => {
    let now = INSTAGRAM_EPOCH_MS + 50_000;
    const gen = new IdGenerator(() => now);
    const early = [gen.next('media', 8191), gen.next('media', 8191), gen.next('media', 8191)];
    now += 1;
    const later = gen.next('media', 0);
    const laterSame = gen.next('media', 8191);
    expect(decodeId(laterSame).sequence).toBe(0);
    // A later millisecond beats any shard and sequence of an earlier one.
    for (const e of early) {
      expect(later > e).toBe(true);
      expect(laterSame > e).toBe(true);
    }
  });

  it('never goes backwards when the clock does', () => {
    let now = INSTAGRAM_EPOCH_MS + 1_000_000;
    const gen = new IdGenerator(() => now);
    const a = gen.next('users', 3);
    now -= 500;
    const b = gen.next('users', 3);
    expect(b > a).toBe(true);
    expect(decodeId(b).timestampMs).toBe(now + 500);
  });

  it('floors fractional clock readings (RealClock gives sub-ms time)', () => {
    const gen = new IdGenerator(() => INSTAGRAM_EPOCH_MS + 10.9);
    expect(decodeId(gen.next('t', 0)).timestampMs).toBe(INSTAGRAM_EPOCH_MS + 10);
  });
});

describe('shortcodes', () => {
  it('round-trip 300 seeded ids and known values', () => {
    expect(toShortcode(0n)).toBe('A');
    expect(toShortcode(63n)).toBe('_');
    expect(toShortcode(64n)).toBe('BA');
    expect(fromShortcode('BA')).toBe(64n);
    const rng = new Prng(5);
    for (let i = 0; i < 300; i++) {
      const id = encodeId(INSTAGRAM_EPOCH_MS + rng.int(0, 2 ** 39), rng.int(0, 8191), rng.int(0, 1023));
      const code = toShortcode(id);
      expect(code).toMatch(/^[A-Za-z0-9_-]{1,11}$/);
      expect(fromShortcode(code)).toBe(id);
      expect(toShortcode(id.toString())).toBe(code);
    }
  });

  it('rejects junk: empty, bad characters, too long, or beyond 2^63', () => {
    for (const junk of ['', 'abc!', 'a b', 'a.b', 'A'.repeat(12), '__________' + '_', '../etc', 'é']) {
      expect(fromShortcode(junk)).toBeNull();
    }
    // 11 digits can hold 66 bits; the largest accepted is 2^63 - 1.
    expect(fromShortcode(toShortcode(2n ** 63n - 1n))).toBe(2n ** 63n - 1n);
    expect(fromShortcode(toShortcode(2n ** 63n))).toBeNull();
  });
});

describe('isIdString', () => {
  it('accepts decimal strings below 2^63 and nothing else', () => {
    expect(isIdString('0')).toBe(true);
    expect(isIdString('1')).toBe(true);
    expect(isIdString('11637205501278089')).toBe(true);
    expect(isIdString('9223372036854775807')).toBe(true); // 2^63 - 1
    expect(isIdString('9223372036854775808')).toBe(false); // 2^63
    expect(isIdString('18446744073709551615')).toBe(false); // 2^64 - 1
    expect(isIdString('1'.repeat(21))).toBe(false);
    for (const junk of ['', '-1', '+1', '1.5', '1e5', ' 1', '1 ', '0x10', 'abc', '١٢٣']) expect(isIdString(junk)).toBe(false);
  });

  it('shardOf reads a decimal string as BigInt would, and leaves anything else to BigInt', () => {
    const viaBigInt = (text: string) => Number((BigInt(text) >> 10n) & 0x1fffn);
    for (const text of ['0', '1', '1023', '1024', '8388607', '8388608', '0001234567', '9223372036854775807', '18446744073709551615', '1'.repeat(30)]) expect(shardOf(text), text).toBe(viaBigInt(text));
    for (let i = 0; i < 2000; i++) {
      const id = (BigInt(Math.floor(Math.random() * 2 ** 40)) << 23n) | (BigInt(i % MAX_LOGICAL_SHARDS) << 10n) | BigInt(i % 1024);
      expect(shardOf(id.toString())).toBe(i % MAX_LOGICAL_SHARDS);
    }
    expect(shardOf('')).toBe(0);
    expect(shardOf(' 2048')).toBe(viaBigInt(' 2048'));
    expect(shardOf('0x400')).toBe(1);
    expect(shardOf('-1')).toBe(viaBigInt('-1'));
    for (const junk of ['1.5', 'abc']) expect(() => shardOf(junk)).toThrow(SyntaxError);
  });
});
