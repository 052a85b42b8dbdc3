// Instagram's 64-bit ids: 41 bits of milliseconds since a custom epoch, 13 bits of logical shard,
// 10 bits of a per-table sequence. Any id routes to its shard without a directory lookup.

import { simError } from '../engine/errors.ts';

/** Instagram's epoch: 2011-08-24T21:07:01.721Z. */
export const INSTAGRAM_EPOCH_MS = 1314220021721;
export const SHARD_BITS = 13;
export const SEQUENCE_BITS = 10;
export const MAX_LOGICAL_SHARDS = 1 << SHARD_BITS;
const SEQ_MOD = 1 << SEQUENCE_BITS;

export interface DecodedId {
  timestampMs: number;
  shardId: number;
  sequence: number;
}

export function encodeId(timestampMs: number, shardId: number, sequence: number, epochMs = INSTAGRAM_EPOCH_MS): bigint {
  const delta = Math.floor(timestampMs) - epochMs;
  // 41 bits of time, but ids live in a signed 64-bit column (Postgres bigint, SQLite INTEGER), so
  // the top bit stays clear: about 34.8 years after the epoch.
  if (delta < 0 || delta >= 2 ** 40) throw simError('SG_ERR_INVALID_PARAM', `timestamp ${timestampMs} is outside the signed 64-bit id range`);
  if (!Number.isInteger(shardId) || shardId < 0 || shardId >= MAX_LOGICAL_SHARDS) {
    throw simError('SG_ERR_INVALID_PARAM', `logical shard ${shardId} does not fit in ${SHARD_BITS} bits`);
  }
  return (BigInt(delta) << 23n) | (BigInt(shardId) << 10n) | BigInt(sequence % SEQ_MOD);
}

export function decodeId(id: bigint | string, epochMs = INSTAGRAM_EPOCH_MS): DecodedId {
  const n = typeof id === 'bigint' ? id : BigInt(id);
  return {
    timestampMs: Number(n >> 23n) + epochMs,
    shardId: Number((n >> 10n) & 0x1fffn),
    sequence: Number(n & 0x3ffn),
  };
}

/** 2^23: the shard bits and the sequence bits, the low bits of an id shardOf reads. */
const LOW_23 = 1 << (SHARD_BITS + SEQUENCE_BITS);

/** The logical shard an id was minted on. */
export function shardOf(id: bigint | string): number {
  if (typeof id === 'string') {
    // A decimal string (every id the service handles) without a BigInt: the id modulo 2^23,
    // digit by digit ((10a + d) mod 2^23 only needs a mod 2^23, and a mask is that mod), then its
    // shard bits. Anything else (signs, spaces, hex) takes BigInt's parse and its errors.
    const len = id.length;
    let low = 0;
    let i = 0;
    for (; i < len; i++) {
      const c = id.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      low = (low * 10 + c) & (LOW_23 - 1);
    }
    if (i === len && len > 0) return low >>> SEQUENCE_BITS;
  }
  const n = typeof id === 'bigint' ? id : BigInt(id);
  return Number((n >> 10n) & 0x1fffn);
}

/** True for a decimal string that is a plausible 64-bit id. */
export function isIdString(value: string): boolean {
  const n = value.length;
  if (n === 0 || n > 19 || (n > 1 && value.charCodeAt(0) === 48)) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  // 19 digits can exceed 2^63 - 1; equal-length decimal strings compare like numbers.
  return n < 19 || value <= '9223372036854775807';
}

/** The smallest id that could have been minted at `timestampMs` (for time-range queries). */
export function minIdAt(timestampMs: number, epochMs = INSTAGRAM_EPOCH_MS): bigint {
  if (Number.isNaN(timestampMs)) throw simError('SG_ERR_INVALID_PARAM', 'timestamp is not a number');
  // Out-of-range times clamp to the ends of the id space instead of throwing from BigInt.
  const delta = Math.min(2 ** 40 - 1, Math.max(0, Math.floor(Math.min(timestampMs, 8.64e15)) - epochMs));
  return BigInt(delta) << 23n;
}

/** Which of several processes minting ids for the same shards this one is (serve --workers). */
export interface IdPartition {
  /** 0 … count − 1 */
  index: number;
  count: number;
}

/**
 * Mints ids the way Instagram's PL/pgSQL `next_id()` did, one sequence per (table, shard).
 * Within a shard and table, ids strictly increase even when the clock stands still.
 *
 * Processes that mint for the same shards (the server processes of `serve --workers N`) split the
 * 10 sequence bits among them: process i of n takes the sequences ≡ i (mod n), so two processes
 * never mint the same id in the same millisecond, and each mints up to ⌈1024 / n⌉ per ms per shard
 * and table before it borrows the next millisecond.
 */
export class IdGenerator {
  private readonly last = new Map<string, { ms: number; seq: number }>();
  private readonly first: number;
  private readonly step: number;
  constructor(
    private readonly nowMs: () => number,
    private readonly epochMs = INSTAGRAM_EPOCH_MS,
    partition: IdPartition = { index: 0, count: 1 },
  ) {
    if (!Number.isInteger(partition.count) || partition.count < 1 || partition.count > SEQ_MOD || !Number.isInteger(partition.index) || partition.index < 0 || partition.index >= partition.count) {
      throw simError('SG_ERR_INVALID_PARAM', `id partition ${partition.index} of ${partition.count} is not one of 1–${SEQ_MOD} processes`);
    }
    this.first = partition.index;
    this.step = partition.count;
  }

  next(table: string, shardId: number): bigint {
    const key = `${table}:${shardId}`;
    let ms = Math.floor(this.nowMs());
    const prev = this.last.get(key);
    let seq = this.first;
    if (prev) {
      if (ms <= prev.ms) {
        ms = prev.ms;
        seq = prev.seq + this.step;
        if (seq >= SEQ_MOD) {
          ms += 1;
          seq = this.first;
        }
      }
    }
    this.last.set(key, { ms, seq });
    return encodeId(ms, shardId, seq, this.epochMs);
  }
}

const SHORTCODE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Instagram's shortcode: the media id in base64url digits. */
export function toShortcode(id: bigint | string): string {
  let n = typeof id === 'bigint' ? id : BigInt(id);
  if (n === 0n) return 'A';
  let out = '';
  while (n > 0n) {
    out = SHORTCODE_ALPHABET[Number(n & 63n)] + out;
    n >>= 6n;
  }
  return out;
}

export function fromShortcode(code: string): bigint | null {
  if (!/^[A-Za-z0-9_-]{1,11}$/.test(code)) return null;
  let n = 0n;
  for (const ch of code) n = (n << 6n) | BigInt(SHORTCODE_ALPHABET.indexOf(ch));
  return n < 2n ** 63n ? n : null;
}
