// The 2012 topology as the virtual-time simulator sees it: every part is a queue with servers and a
// budget (sim/engine/resource.ts), driven by the same placement rules the live parts use — the
// logical → physical shard map, the ketama (or modulo) ring, LRU by bytes, leases, feed caps and
// fan-out chunking. Nothing here stores a row or a value: a cache node is an LRU of keys and sizes,
// a database server is its pgbouncer pool, a replica is the queue of writes it still has to apply.

import { Resource } from '../engine/resource.ts';
import { ByteLru } from '../parts/byte-lru.ts';
import { KetamaRing, ModuloRing, pointFor, type HashRing } from '../parts/ketama.ts';
import { LeaseRule } from '../parts/leases.ts';
import { ShardMap } from '../parts/shard-map.ts';
import type { TopologyConfig } from '../topology-config.ts';

/**
 * Key families in the cache (the live code's m:, u:, t:, r:, b: and bx: keys), encoded in an
 * integer key as id × 8 + family.
 */
export const KEY = { media: 0, user: 1, token: 2, recent: 3, blocks: 4, blockedEither: 5 } as const;
export type KeyFamily = (typeof KEY)[keyof typeof KEY];
const FAMILIES = 8;

/** Ids a cache key can carry: the key (id × 8 + family) stays below 2^53. */
export const MAX_KEY_ID = 2 ** 49;

export function cacheKey(family: KeyFamily, id: number): number {
  return id * FAMILIES + family;
}

interface RingTable {
  points: Uint32Array | null;
  owner: Int16Array;
}

/** Where the gutter ring places a key: another mix of it than the main ring's. */
const GUTTER_SALT = 0x5bd1e995;

/** A 32-bit mix of a cache key (below 2^53): its position on a ring (murmur3's finaliser over both halves). */
export function keyHash(key: number): number {
  let h = (key >>> 0) ^ Math.imul(Math.floor(key / 4294967296), 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function keyFamily(key: number): KeyFamily {
  return (key % FAMILIES) as KeyFamily;
}

export function keyId(key: number): number {
  return (key - (key % FAMILIES)) / FAMILIES;
}

/** A FIFO of times that never decrease (a replication stream's apply times): how many are still after t. */
export class MonotoneTimes {
  private buf = new Float64Array(1024);
  private head = 0;
  private count = 0;

  push(t: number): void {
    if (this.count === this.buf.length) {
      const b = new Float64Array(this.buf.length * 2);
      for (let i = 0; i < this.count; i++) b[i] = this.buf[(this.head + i) % this.buf.length]!;
      this.buf = b;
      this.head = 0;
    }
    this.buf[(this.head + this.count) % this.buf.length] = t;
    this.count++;
  }

  /** Entries later than `t` (dropping the ones at or before it). */
  after(t: number): number {
    while (this.count > 0 && this.buf[this.head]! <= t) {
      this.head = (this.head + 1) % this.buf.length;
      this.count--;
    }
    return this.count;
  }

  /** The earliest entry later than `t`, or null. */
  oldestAfter(t: number): number | null {
    return this.after(t) > 0 ? this.buf[this.head]! : null;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
  }
}

export class DbServer {
  primary: Resource;
  replica: Resource | null;
  /** The replica's apply queue: one server applying writes in order. */
  apply: Resource | null;
  /** Apply end times of writes the replica still owes. */
  readonly owed = new MonotoneTimes();
  /** The latest arrival at the replica (the stream is FIFO: a write cannot overtake an earlier one). */
  lastArrival = 0;
  down = false;
  replicaName: string | null;
  /** Queries in the current step (primary, replica) and the run. */
  stepOps = 0;
  ops = 0;
  reads = 0;
  writes = 0;
  /** The largest lag a write applied in the current step waited (ms). */
  stepLagMax = 0;
  maxLagMs = 0;
  staleReads = 0;

  constructor(
    readonly name: string,
    readonly index: number,
    poolSize: number,
    poolQueueLimit: number,
    replicas: boolean,
  ) {
    this.primary = new Resource(name, poolSize, poolQueueLimit);
    this.replica = replicas ? new Resource(`${name}-r1`, poolSize, poolQueueLimit) : null;
    this.apply = replicas ? new Resource(`${name}-apply`, 1, Number.MAX_SAFE_INTEGER) : null;
    this.replicaName = replicas ? `${name}-r1` : null;
  }
}

export class CacheNode {
  readonly server: Resource;
  lru: ByteLru;
  alive = true;
  onRing = true;
  hits = 0;
  misses = 0;
  dead = 0;
  /** Lookups of its keys the gutter pool took while it was down (counted there as hits, misses or dead). */
  toGutter = 0;
  fills = 0;
  herd = 0;
  /** Shard reads for keys whose fill was already in flight. */
  herdFills = 0;
  stepHits = 0;
  stepLookups = 0;
  peakBytes = 0;
  evictionsBefore = 0;

  constructor(
    readonly name: string,
    readonly index: number,
    threads: number,
    queueLimit: number,
    readonly capacityBytes: number,
    /** A node of the gutter pool (never on the ring): its values expire (set with an expiry time). */
    readonly gutter = false,
  ) {
    this.server = new Resource(name, threads, queueLimit);
    this.lru = new ByteLru(capacityBytes, 1024, { ttl: gutter });
    if (gutter) this.onRing = false;
  }

  get evictions(): number {
    return this.evictionsBefore + this.lru.evictions;
  }

  /** Killed: everything it held is gone; a revived node starts empty. */
  wipe(): number {
    const items = this.lru.items;
    this.evictionsBefore += this.lru.evictions;
    this.lru = new ByteLru(this.capacityBytes, 1024, { ttl: this.gutter });
    return items;
  }
}

export class VirtualTopology {
  readonly shardMap: ShardMap;
  readonly servers: DbServer[] = [];
  /** The ring's nodes (index = position), then the gutter pool's. */
  readonly caches: CacheNode[];
  /** The gutter pool (its nodes are also at the end of `caches`), and the ring that spreads keys over it. */
  readonly gutter: CacheNode[];
  private readonly gutterRing: HashRing | null;
  ring: HashRing;
  /** Facebook's leases on misses (null: off); the config's setting until an admin action turns them on or off. */
  leases: LeaseRule | null;
  readonly app: Resource;
  readonly workers: Resource;
  readonly redis: Resource;
  readonly redisReplica: Resource | null;
  /** Replica lag the topology adds to every write before a replica may apply it (ms); /_sim/db/lag changes it. */
  replicaDelayMs: number;
  writesLost = 0;
  /**
   * Changes whenever the ring does, or a node dies or comes back (the node serving its keys changes:
   * the gutter takes them, or they fall through): a node found for a key under an older version must
   * be found again.
   */
  ringVersion = 0;
  private readonly nodeIndex = new Map<string, number>();
  /** The ring as a table: its points in order and each point's cache index (modulo: the nodes in order). */
  private ringTable: RingTable = { points: null, owner: new Int16Array(0) };
  private readonly gutterTable: RingTable | null;

  constructor(readonly config: TopologyConfig) {
    const c = config.capacity;
    this.shardMap = new ShardMap(config.shards.logical, config.shards.physical);
    for (let p = 0; p < config.shards.physical; p++) this.addServer();
    this.caches = Array.from({ length: config.cache.nodes }, (_, i) => new CacheNode(`cache-${i}`, i, c.memcachedThreads, c.memcachedQueueLimit, c.cacheBytesPerNode));
    this.caches.forEach((n) => this.nodeIndex.set(n.name, n.index));
    const names = this.caches.map((n) => n.name);
    this.ring = config.cache.hashing === 'modulo' ? new ModuloRing(names) : new KetamaRing(names, config.cache.pointsPerNode);
    this.gutter = Array.from({ length: config.cache.gutter }, (_, g) => new CacheNode(`gutter-${g}`, config.cache.nodes + g, c.memcachedThreads, c.memcachedQueueLimit, c.cacheBytesPerNode, true));
    this.caches.push(...this.gutter);
    this.gutter.forEach((n) => this.nodeIndex.set(n.name, n.index));
    this.gutterRing = this.gutter.length > 0 ? new KetamaRing(this.gutter.map((n) => n.name), config.cache.pointsPerNode) : null;
    this.ringTable = this.tableOf(this.ring);
    this.gutterTable = this.gutterRing ? this.tableOf(this.gutterRing) : null;
    this.leases = config.cache.leases ? new LeaseRule() : null;
    this.app = new Resource('app', c.appServers * c.workersPerServer, c.appQueueLimit);
    this.workers = new Resource('workers', config.queue.workers, config.queue.maxDepth);
    this.redis = new Resource('feed-primary', 1, c.redisQueueLimit);
    this.redisReplica = config.feed.replicas > 0 ? new Resource('feed-replica', 1, c.redisQueueLimit) : null;
    this.replicaDelayMs = config.database.replicaLagMs;
  }

  addServer(): DbServer {
    const i = this.servers.length;
    const d = this.config.database;
    const s = new DbServer(`db-${i}`, i, d.poolSize, d.poolQueueLimit, d.replicas > 0);
    this.servers.push(s);
    return s;
  }

  serverOfShard(logicalShard: number): DbServer {
    return this.servers[this.shardMap.physicalOf(logicalShard)]!;
  }

  /**
   * The cache node a key lives on (or null with an empty ring): the ring's first point at or after
   * the key's hash. The ring's points are libketama's (md5 of the node names, as the live client's);
   * a key's position is a 32-bit mix of its number — uniform, as md5 of its text is, and no memo
   * per key: the model's ids are not the live ids, so the live key text would not place it the same anyway.
   */
  nodeOf(family: KeyFamily, id: number): CacheNode | null {
    return this.nodeAt(this.ringTable, keyHash(cacheKey(family, id)));
  }

  private nodeAt(t: RingTable, h: number): CacheNode | null {
    const owner = t.owner;
    if (owner.length === 0) return null;
    const points = t.points;
    return this.caches[owner[points === null ? h % owner.length : pointFor(points, h)]!]!;
  }

  private tableOf(ring: HashRing): RingTable {
    if (ring instanceof KetamaRing) {
      const { points, owners } = ring.table();
      return { points, owner: Int16Array.from(owners, (name) => this.nodeIndex.get(name)!) };
    }
    return { points: null, owner: Int16Array.from(ring.nodes, (name) => this.nodeIndex.get(name)!) };
  }

  /**
   * The node that answers for a key whose owner is `owner`: the owner, or while it is down, the
   * key's gutter node where there is a pool (the live client's rule; md5 of the key text, only for
   * keys of a down node, and not memoised).
   */
  serving(owner: CacheNode, key: number): CacheNode {
    if (owner.alive || this.gutterRing === null) return owner;
    if (this.gutter.length === 1) return this.gutter[0]!;
    return this.nodeAt(this.gutterTable!, (keyHash(key) ^ GUTTER_SALT) >>> 0)!;
  }

  /** A node died or came back without the ring changing: the ring's memo holds, the nodes serving its keys do not. */
  servingChanged(): void {
    this.ringVersion++;
  }

  /** Leases on (a fresh rule: no token is held) or off (tokens held are dropped), from now on. */
  setLeases(on: boolean): void {
    if (on && !this.leases) this.leases = new LeaseRule();
    else if (!on) this.leases = null;
  }

  /** The ring changed: every key's node is computed again when next asked. */
  ringChanged(ring: HashRing): void {
    this.ring = ring;
    this.ringVersion++;
    this.ringTable = this.tableOf(ring);
  }
}
