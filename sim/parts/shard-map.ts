// Logical shards are pre-split and mapped in code to far fewer physical servers. Moving load means
// repointing a logical shard, never re-hashing; a signup picks its logical shard by the strategy.

import { simError } from '../engine/errors.ts';
import type { TopologyConfig } from '../topology-config.ts';

export class ShardMap {
  private readonly toPhysical: Int32Array;
  /** Incremented on every repoint, so callers can tell that a route they computed went stale. */
  version = 0;

  constructor(
    readonly logical: number,
    physical: number,
    initial?: readonly number[],
  ) {
    this.toPhysical = new Int32Array(logical);
    if (initial) {
      if (initial.length !== logical) throw simError('SG_ERR_CONFIG_INVALID', `shard map has ${initial.length} entries, expected ${logical}`);
      initial.forEach((p, i) => (this.toPhysical[i] = p));
    } else {
      // Contiguous blocks, as Instagram's example did (logical 0–499 on machine A, …).
      for (let s = 0; s < logical; s++) this.toPhysical[s] = Math.floor((s * physical) / logical);
    }
  }

  physicalOf(shardId: number): number {
    return this.toPhysical[shardId]!;
  }

  repoint(shardId: number, physical: number): void {
    if (shardId < 0 || shardId >= this.logical) throw simError('SG_ERR_SHARD_MOVE', `no logical shard ${shardId}`);
    this.toPhysical[shardId] = physical;
    this.version++;
  }

  /** Logical shards on a physical server, ascending. */
  shardsOn(physical: number): number[] {
    const out: number[] = [];
    for (let s = 0; s < this.logical; s++) if (this.toPhysical[s] === physical) out.push(s);
    return out;
  }

  toArray(): number[] {
    return Array.from(this.toPhysical);
  }

  /** The map as contiguous ranges: [{ from, to, physical }]. */
  ranges(): Array<{ from: number; to: number; physical: number }> {
    const out: Array<{ from: number; to: number; physical: number }> = [];
    for (let s = 0; s < this.logical; s++) {
      const p = this.toPhysical[s]!;
      const last = out[out.length - 1];
      if (last && last.physical === p && last.to === s - 1) last.to = s;
      else out.push({ from: s, to: s, physical: p });
    }
    return out;
  }
}

/** The logical shard of the n-th signup (0-based) under the configured strategy. */
export function shardForSignup(n: number, shards: TopologyConfig['shards']): number {
  if (shards.strategy === 'range') return Math.floor(n / shards.usersPerRange) % shards.logical;
  return n % shards.logical;
}

/** A stable logical shard for a string key (usernames, tags, places): FNV-1a mod logical. */
export function shardForKey(key: string, logical: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % logical;
}
