// The memcached tier: N LRU nodes behind a client-side hash ring, used look-aside with delete on
// write. Nodes can die, return empty, or leave the ring; leases optionally collapse thundering herds,
// decided by the LeaseRule the simulator applies too (sim/parts/leases.ts). An optional gutter pool
// (Facebook's) takes a dead node's keys: clients read them from the gutter and fill their misses
// into it with a short expiry, and deletes are not sent to it (the expiry bounds the staleness).

import { Buffer } from 'node:buffer';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../engine/clock.ts';
import { currentWork } from '../engine/actor-context.ts';
import { simError } from '../engine/errors.ts';
import { KetamaRing, ModuloRing, type HashRing } from './ketama.ts';
import { LeaseRule } from './leases.ts';
import type { CounterHandle, Metrics } from '../observability/metrics.ts';
import type { TopologyConfig } from '../topology-config.ts';

export type CacheConfig = TopologyConfig['cache'];

export interface CacheNodeInfo {
  name: string;
  /** False between markDead and markAlive. */
  alive: boolean;
  /** False after removeNode: clients no longer send it keys. Gutter nodes are never on the ring. */
  onRing: boolean;
  /** A node of the gutter pool: it serves the keys of ring nodes that are down. */
  gutter: boolean;
  items: number;
  /** UTF-8 bytes of keys plus values held (bytes). */
  bytes: number;
  capacityBytes: number;
  hits: number;
  /** Gets that returned nothing, including those to a dead node. */
  misses: number;
  evictions: number;
}

const HELP: Record<string, string> = {
  cache_requests: 'Keys looked up, by the node that answered (the owner, or a gutter node while the owner is down) and result (hit, miss, or dead: the node was down and no gutter took it).',
  cache_gutter_lookups: 'Lookups of a down node\'s keys sent to the gutter pool, by the down node (cache_requests counts them on the gutter node that took them).',
  cache_multiget_requests: 'Multiget round trips, one per node a multiget touched.',
  cache_sets: 'Values stored, by node (sets to a dead node are dropped and not counted).',
  cache_deletes: 'Delete-on-write invalidations, by node.',
  cache_evictions: 'Values evicted by LRU to stay within capacityBytes, by node.',
  cache_fills: 'Misses that reached a shard (fills called), by the node that missed.',
  cache_herd_events: 'Misses on a key whose fill was already in flight, by node.',
  cache_herd_fills: "Shard reads for a key whose fill was already in flight, by node: the herd's load on the shards (leases make those misses wait instead).",
  cache_items: 'Values held, by node.',
  cache_bytes: 'Key plus value bytes held, by node.',
};

interface CacheNode {
  readonly name: string;
  readonly labels: { node: string };
  alive: boolean;
  onRing: boolean;
  readonly gutter: boolean;
  readonly lru: LRUCache<string, string>;
  readonly hit: CounterHandle;
  readonly miss: CounterHandle;
  readonly dead: CounterHandle;
  /** Lookups of its keys sent to the gutter pool while it was down. */
  readonly toGutter: CounterHandle;
  readonly multiget: CounterHandle;
  readonly sets: CounterHandle;
  readonly deletes: CounterHandle;
  readonly evictions: CounterHandle;
  readonly fills: CounterHandle;
  readonly herd: CounterHandle;
  readonly herdFills: CounterHandle;
  readonly setItems: (value: number) => void;
  readonly setBytes: (value: number) => void;
  /** Hits and misses of the multiget under way, counted once it ends (see getMany). */
  batchHits: number;
  batchMisses: number;
}

/** Fills under way for one key. `lease` is the fill later missers may wait on. */
interface Flight {
  fills: number;
  lease: Promise<string | null> | null;
  /** A delete arrived mid-fill: with leases its value must not be cached (Facebook's lease invalidation). */
  stale: boolean;
}

/** Keys whose node CacheCluster remembers before it starts again (count). */
const OWNER_MEMO_LIMIT = 200_000;

export class CacheCluster {
  private readonly config: CacheConfig;
  private readonly metrics: Metrics;
  private readonly byName = new Map<string, CacheNode>();
  private ring: HashRing;
  /** The gutter pool (empty when none is configured), and the ring that spreads keys over it. */
  private readonly gutterNodes: CacheNode[] = [];
  private readonly gutterRing: HashRing | null = null;
  private readonly inflight = new Map<string, Flight>();
  /** Who may fill a missed key and whether a fill may be stored: the rule the simulator applies too. */
  private readonly leaseRule = new LeaseRule();
  /** Whether misses take leases now: the config's `leases` at start, changed at run time by setLeases. */
  private leasesOn: boolean;
  private readonly clock: Clock;
  /**
   * The node each recently asked key belongs to on the current ring (cleared when the ring
   * changes): one lookup instead of the ring's hash lookup, its search and the node by name.
   */
  private readonly ownerMemo = new Map<string, CacheNode>();

  constructor(config: CacheConfig, deps: { clock: Clock; metrics: Metrics }) {
    this.config = config;
    this.metrics = deps.metrics;
    this.clock = deps.clock;
    this.leasesOn = config.leases;
    for (const [name, help] of Object.entries(HELP)) this.metrics.describe(name, help);
    const names = Array.from({ length: config.nodes }, (_, i) => `cache-${i}`);
    for (const name of names) this.byName.set(name, this.createNode(name, false));
    this.ring = config.hashing === 'modulo' ? new ModuloRing(names) : new KetamaRing(names, config.pointsPerNode);
    if (config.gutter > 0) {
      const gutterNames = Array.from({ length: config.gutter }, (_, i) => `gutter-${i}`);
      for (const name of gutterNames) {
        const node = this.createNode(name, true);
        this.gutterNodes.push(node);
        this.byName.set(name, node);
      }
      this.gutterRing = new KetamaRing(gutterNames, config.pointsPerNode);
    }
  }

  /** Whether misses take leases (Facebook's thundering-herd protection) now. */
  get leases(): boolean {
    return this.leasesOn;
  }

  /**
   * Turns leases on or off for the misses from now on (an operator's switch; the config's `leases`
   * is only where it starts). Fills already in flight finish as they began. Turned off, the grants
   * outstanding are dropped: no miss waits on them any more, and a fill still holding one is not
   * stored (a later miss reads it again), since a delete meanwhile would no longer have revoked it.
   */
  setLeases(enabled: boolean): void {
    if (enabled === this.leasesOn) return;
    this.leasesOn = enabled;
    if (!enabled) this.leaseRule.clear();
  }

  /** Every node this cluster has known, on the ring or not, in creation order (the gutter pool last). */
  get nodeNames(): string[] {
    return [...this.byName.keys()];
  }

  nodeFor(key: string): string | null {
    return this.ring.nodeFor(key) ?? null;
  }

  get(key: string): string | undefined {
    const node = this.owner(key);
    return node ? this.read(this.lookupNode(node, key), key) : undefined;
  }

  /** cache_requests counts keys (as memcached's get_hits/get_misses do); cache_multiget_requests counts round trips. */
  getMany(keys: readonly string[]): Map<string, string> {
    const found = new Map<string, string>();
    // The same counts as a read() per key, added up per node and counted once the loop ends
    // (nothing else runs meanwhile): one counter update per node rather than one per key.
    const touched: CacheNode[] = [];
    const work = currentWork();
    let lookups = 0;
    let misses = 0;
    for (const key of keys) {
      const owner = this.owner(key);
      if (!owner) continue;
      const node = this.lookupNode(owner, key);
      if (!touched.includes(node)) {
        touched.push(node);
        node.multiget.inc();
        node.batchHits = 0;
        node.batchMisses = 0;
      }
      lookups++;
      if (!node.alive) {
        node.dead.inc();
        misses++;
        continue;
      }
      const value = node.lru.get(key);
      if (value === undefined) {
        node.batchMisses++;
        misses++;
      } else {
        node.batchHits++;
        found.set(key, value);
      }
    }
    for (const node of touched) {
      if (node.batchHits > 0) node.hit.inc(node.batchHits);
      if (node.batchMisses > 0) node.miss.inc(node.batchMisses);
    }
    if (work) {
      work.cacheLookups += lookups;
      work.cacheMisses += misses;
    }
    return found;
  }

  /** Stores on the key's node, or (while it is down) on its gutter node, where the value expires after gutterTtlMs. */
  set(key: string, value: string): void {
    const owner = this.owner(key);
    const node = owner && this.serving(owner, key);
    if (!node || !node.alive) return;
    const work = currentWork();
    if (work) work.cacheSets++;
    node.sets.inc();
    node.lru.set(key, value);
    this.updateGauges(node);
  }

  delete(key: string): void {
    // Invalidate the lease even when no node holds the key, so an in-flight fill of the old value is not cached.
    if (this.leasesOn) {
      this.leaseRule.invalidate(key);
      const flight = this.inflight.get(key);
      if (flight) {
        flight.stale = true;
        this.inflight.delete(key);
      }
    }
    // Deletes go to the owner only: a gutter's copies are not invalidated, they expire (Facebook's design).
    const node = this.owner(key);
    if (!node || !node.alive) return;
    const work = currentWork();
    if (work) work.cacheDeletes++;
    node.deletes.inc();
    if (node.lru.delete(key)) this.updateGauges(node);
  }

  /**
   * Look-aside read: on a miss calls fill() (the shard read), stores a non-null result, returns it.
   * A miss while a fill for the key is in flight is a herd event; with leases it waits for that
   * fill instead of calling its own. A dead node cannot grant leases, so without a gutter pool its
   * misses all fill; with one, the gutter node answers (and grants leases) in its place. A rejected
   * fill rejects every waiter on its lease.
   */
  async getOrFill(key: string, fill: () => Promise<string | null>): Promise<string | null> {
    const owner = this.owner(key);
    if (!owner) return fill();
    const node = this.lookupNode(owner, key);
    const cached = this.read(node, key);
    if (cached !== undefined) return cached;
    const lease = this.joinFlight(node, key);
    if (typeof lease !== 'number') {
      countWait();
      return lease;
    }
    const flight = this.startFlight(node, key);
    const result = this.finishFlight(key, flight, lease, (async () => fill())());
    if (lease > 0) flight.lease = result;
    return result;
  }

  /** The multiget form of getOrFill: one getMany, then at most one fillMany for the keys no one else is filling. */
  async getOrFillMany(keys: readonly string[], fillMany: (missing: string[]) => Promise<Map<string, string>>): Promise<Map<string, string>> {
    const unique = keys.length > 1 ? [...new Set(keys)] : keys.slice();
    if (this.ring.nodes.length === 0) return fillMany(unique);
    const found = this.getMany(unique);
    // Every key hit (a warm read): nothing to fill or wait for.
    if (found.size === unique.length) return found;
    const waiting: Array<[string, Promise<string | null>]> = [];
    const missing: string[] = [];
    const flights: Flight[] = [];
    const tokens: number[] = [];
    for (const key of unique) {
      if (found.has(key)) continue;
      const node = this.serving(this.owner(key)!, key);
      const lease = this.joinFlight(node, key);
      if (typeof lease !== 'number') {
        countWait();
        waiting.push([key, lease]);
        continue;
      }
      missing.push(key);
      tokens.push(lease);
      flights.push(this.startFlight(node, key));
    }
    if (missing.length > 0) {
      const batch = (async () => fillMany(missing))();
      const fillers = missing.map((key, i) => {
        const flight = flights[i]!;
        const token = tokens[i]!;
        const result = this.finishFlight(key, flight, token, batch.then((m) => m.get(key) ?? null));
        // Only other callers await a lease; unobserved, a failed batch would also surface as unhandled.
        result.catch(() => {});
        if (token > 0) flight.lease = result;
        return result;
      });
      const values = await Promise.all(fillers);
      missing.forEach((key, i) => {
        const value = values[i];
        if (value != null) found.set(key, value);
      });
    }
    for (const [key, lease] of waiting) {
      const value = await lease;
      if (value !== null) found.set(key, value);
    }
    return found;
  }

  /** The node stays on the ring, so its keys miss (result "dead") and fall through to the shards. */
  markDead(name: string): void {
    const node = this.node(name);
    if (!node.alive) return;
    node.alive = false;
    node.lru.clear();
    this.updateGauges(node);
  }

  markAlive(name: string): void {
    this.node(name).alive = true;
  }

  /**
   * Takes the node off the ring, so its keys go to the next node clockwise (ketama) or almost all
   * keys move (modulo). Its contents are dropped: it would miss every delete while off the ring, so
   * keeping them could serve stale values if it were added back.
   */
  removeNode(name: string): void {
    const node = this.node(name);
    if (node.gutter) throw simError('SG_ERR_INVALID_PARAM', `"${name}" is a gutter node: it is not on the ring`, { node: name });
    if (!node.onRing) return;
    node.onRing = false;
    node.lru.clear();
    this.updateGauges(node);
    this.setRing(this.ring.without(name));
  }

  /** Puts a node (by default a new `cache-K`) on the ring, alive and empty, and returns its name. */
  addNode(name?: string): string {
    let k = this.byName.size - this.gutterNodes.length;
    while (name === undefined && this.byName.has(`cache-${k}`)) k++;
    const chosen = name ?? `cache-${k}`;
    let node = this.byName.get(chosen);
    if (!node) {
      node = this.createNode(chosen, false);
      this.byName.set(chosen, node);
    } else if (node.gutter) {
      throw simError('SG_ERR_INVALID_PARAM', `"${chosen}" is a gutter node: it cannot join the ring`, { node: chosen });
    } else if (node.onRing) {
      return chosen;
    }
    node.onRing = true;
    node.alive = true;
    this.setRing(this.ring.with(chosen));
    return chosen;
  }

  nodes(): CacheNodeInfo[] {
    return [...this.byName.values()].map((n) => ({
      name: n.name,
      alive: n.alive,
      onRing: n.onRing,
      gutter: n.gutter,
      items: n.lru.size,
      bytes: n.lru.calculatedSize,
      capacityBytes: this.config.capacityBytes,
      hits: n.hit.value,
      misses: n.miss.value + n.dead.value,
      evictions: n.evictions.value,
    }));
  }

  private owner(key: string): CacheNode | undefined {
    const memo = this.ownerMemo.get(key);
    if (memo !== undefined) return memo;
    const name = this.ring.nodeFor(key);
    if (name === undefined) return undefined;
    const node = this.byName.get(name);
    if (node) {
      if (this.ownerMemo.size >= OWNER_MEMO_LIMIT) this.ownerMemo.clear();
      this.ownerMemo.set(key, node);
    }
    return node;
  }

  /** A new ring: keys may belong to other nodes now. */
  private setRing(ring: HashRing): void {
    this.ring = ring;
    this.ownerMemo.clear();
  }

  /** The node that answers for `key`: its owner, or while the owner is down, the key's gutter node (if there is a pool). */
  private serving(owner: CacheNode, key: string): CacheNode {
    if (owner.alive || !this.gutterRing) return owner;
    return this.byName.get(this.gutterRing.nodeFor(key)!)!;
  }

  /** The node a lookup of `key` goes to (see serving); one sent to the gutter is counted on its down owner too. */
  private lookupNode(owner: CacheNode, key: string): CacheNode {
    const node = this.serving(owner, key);
    if (node !== owner) owner.toGutter.inc();
    return node;
  }

  private read(node: CacheNode, key: string): string | undefined {
    const work = currentWork();
    if (work) work.cacheLookups++;
    if (!node.alive) {
      node.dead.inc();
      if (work) work.cacheMisses++;
      return undefined;
    }
    const value = node.lru.get(key);
    (value === undefined ? node.miss : node.hit).inc();
    if (value === undefined && work) work.cacheMisses++;
    return value;
  }

  /**
   * A miss on `key`: counts a herd event if a fill is in flight, then asks the LeaseRule (with
   * leases, on a live node) whether this miss may fill. Returns the fill to wait on when another
   * miss holds the key's token, else the token this miss's own fill holds (0: none — without
   * leases, or on a dead node, which cannot grant leases). The one difference from a plain "one
   * fill in flight" rule: a token lasts the rule's period (10 s of the cluster's clock), so a fill
   * still running after that no longer holds the key — the next miss fills, and the late value is
   * not stored.
   */
  private joinFlight(node: CacheNode, key: string): Promise<string | null> | number {
    const flight = this.inflight.get(key);
    if (flight) node.herd.inc();
    if (!this.leasesOn) return 0;
    // A dead node grants nothing: its misses fill, unless a fill it leased while alive is still in flight.
    if (!node.alive) return flight?.lease ?? 0;
    const token = this.leaseRule.grant(key, this.clock.nowMs());
    if (token > 0) return token;
    // Another miss holds the token, so its fill is in flight (tokens are settled when fills end
    // and dropped on delete, with the flight); without one to wait on, fill without a token.
    return flight?.lease ?? 0;
  }

  private startFlight(node: CacheNode, key: string): Flight {
    node.fills.inc();
    let flight = this.inflight.get(key);
    if (!flight) {
      flight = { fills: 0, lease: null, stale: false };
      this.inflight.set(key, flight);
    }
    if (flight.fills > 0) node.herdFills.inc();
    flight.fills++;
    return flight;
  }

  private async finishFlight(key: string, flight: Flight, token: number, value: Promise<string | null>): Promise<string | null> {
    try {
      const v = await value;
      // A fill holding a token is stored only if the rule says the token still holds (a delete
      // invalidates it); it is settled either way. One without a token is kept out after a delete.
      const allowed = token > 0 ? this.leaseRule.filled(key, this.clock.nowMs(), token) : !flight.stale;
      if (v !== null && allowed) this.set(key, v);
      return v;
    } catch (err) {
      if (token > 0) this.leaseRule.release(key, token);
      throw err;
    } finally {
      if (--flight.fills === 0 && this.inflight.get(key) === flight) this.inflight.delete(key);
    }
  }

  private node(name: string): CacheNode {
    const node = this.byName.get(name);
    if (!node) throw simError('SG_ERR_NOT_FOUND', `no cache node named "${name}"`, { node: name, known: this.nodeNames });
    return node;
  }

  private createNode(name: string, gutter: boolean): CacheNode {
    const labels = { node: name };
    const c = (metric: string, extra?: Record<string, string>) => this.metrics.counter(metric, extra ? { ...labels, ...extra } : labels);
    const evictions = c('cache_evictions');
    const node: CacheNode = {
      name,
      labels,
      alive: true,
      onRing: !gutter,
      gutter,
      // memcached sizes items in bytes on the wire, so UTF-8, not UTF-16 code units. A gutter's
      // values expire gutterTtlMs after they are set, on the cluster's clock (scenario time).
      lru: new LRUCache<string, string>({
        maxSize: this.config.capacityBytes,
        sizeCalculation: (value, key) => Buffer.byteLength(key) + Buffer.byteLength(value),
        dispose: (_v, _k, reason) => {
          if (reason === 'evict') evictions.inc();
        },
        ...(gutter ? { ttl: this.config.gutterTtlMs, ttlResolution: 0, perf: { now: () => this.clock.nowMs() } } : {}),
      }),
      hit: c('cache_requests', { result: 'hit' }),
      miss: c('cache_requests', { result: 'miss' }),
      dead: c('cache_requests', { result: 'dead' }),
      toGutter: c('cache_gutter_lookups'),
      multiget: c('cache_multiget_requests'),
      sets: c('cache_sets'),
      deletes: c('cache_deletes'),
      evictions,
      fills: c('cache_fills'),
      herd: c('cache_herd_events'),
      herdFills: c('cache_herd_fills'),
      setItems: this.metrics.gaugeSetter('cache_items', labels),
      setBytes: this.metrics.gaugeSetter('cache_bytes', labels),
      batchHits: 0,
      batchMisses: 0,
    };
    this.updateGauges(node);
    return node;
  }

  private updateGauges(node: CacheNode): void {
    node.setItems(node.lru.size);
    node.setBytes(node.lru.calculatedSize);
  }
}

/** A miss that waits for another request's fill (a lease) reads no database: counted as a wait, not a miss, in the request's work. */
function countWait(): void {
  const work = currentWork();
  if (!work) return;
  work.cacheMisses--;
  work.cacheWaits++;
}
