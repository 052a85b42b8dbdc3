// The memcached tier: N LRU nodes behind a client-side hash ring, used look-aside with delete on
// write. Nodes can die, return empty, or leave the ring; leases optionally collapse thundering herds,
// decided by the LeaseRule the simulator applies too (sim/parts/leases.ts). An optional gutter pool
// (Facebook's) takes a dead node's keys: clients read them from the gutter and fill their misses
// into it with a short expiry, and deletes are not sent to it (the expiry bounds the staleness).
// Each node is either an LRU in this process (the embedded default) or a real memcached process
// (RemoteCacheNode, sim/backends/memcached.ts): the ring, the look-aside rule, herds, leases and the
// gutter are this class's either way; only where a node keeps its items differs.

import { Buffer } from 'node:buffer';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../engine/clock.ts';
import { currentWork } from '../engine/actor-context.ts';
import { isSimError, simError } from '../engine/errors.ts';
import { KetamaRing, ModuloRing, type HashRing } from './ketama.ts';
import { LeaseRule } from './leases.ts';
import type { CounterHandle, Metrics } from '../observability/metrics.ts';
import type { TopologyConfig } from '../topology-config.ts';

export type CacheConfig = TopologyConfig['cache'];

/** What a real memcached node reports of itself (its `stats`). */
export interface RemoteCacheStats {
  items: number;
  bytes: number;
  capacityBytes: number;
  evictions: number;
  /** The server's own get_hits/get_misses (every client's, not only this process's). */
  getHits: number;
  getMisses: number;
  pid: number;
}

/**
 * A real memcached node as the cluster uses it. Every method rejects with SG_ERR_BACKEND_UNREACHABLE
 * when the node does not answer; kill and revive reject with SG_ERR_INVALID_PARAM for a node whose
 * process this one did not start.
 */
export interface RemoteCacheNode {
  readonly address: string;
  /** Whether kill/revive can act on its process (one this process started). */
  readonly controllable: boolean;
  readonly pid: number | null;
  get(key: string): Promise<string | undefined>;
  getMany(keys: readonly string[]): Promise<Map<string, string>>;
  /** ttlMs 0: no expiry. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  flush(): Promise<void>;
  stats(): Promise<RemoteCacheStats>;
  kill(): Promise<void>;
  revive(): Promise<void>;
}

/** How long a node that stopped answering is left alone before one request probes it again (ms, on the cluster clock: a live topology's is the wall clock). */
const REMOTE_RETRY_MS = 1000;

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
  /** A real memcached node: where it is, and what its own stats said at the last sample. */
  memcached?: { address: string; pid: number | null; controllable: boolean; reachable: boolean; getHits: number; getMisses: number };
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
  cache_remote_errors: 'Requests to a real memcached node that failed, by node and operation (a get that fails counts as a dead lookup and falls through to the shards).',
  cache_remote_returns: 'Times a real memcached node that had stopped answering answered again (it is flushed first: it missed deletes meanwhile), by node.',
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
  /** A real memcached node (null: an LRU in this process). */
  readonly remote: RemoteCacheNode | null;
  /** A real node answered its last request (false: its lookups count as dead until a probe succeeds). */
  reachable: boolean;
  /** When a request may probe an unreachable real node again (the cluster clock, ms), and whether one is. */
  retryAtMs: number;
  probing: boolean;
  /** Its `stats` at the last sample (real nodes). */
  stats: RemoteCacheStats | null;
  readonly errors: Map<string, CounterHandle>;
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

  /** Real memcached nodes by name (sim/backends/memcached.ts), when the tier is real. */
  private readonly remote: ((name: string) => RemoteCacheNode) | null;

  constructor(config: CacheConfig, deps: { clock: Clock; metrics: Metrics; remote?: (name: string) => RemoteCacheNode }) {
    this.config = config;
    this.remote = deps.remote ?? null;
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

  /** Whether the nodes are real memcached processes. */
  get isRemote(): boolean {
    return this.remote !== null;
  }

  get(key: string): string | undefined {
    const node = this.owner(key);
    if (node?.remote) throw simError('SG_ERR_INVALID_PARAM', 'the cache is on real memcached: read it with getOrFill or fetch', { key });
    return node ? this.read(this.lookupNode(node, key), key) : undefined;
  }

  /** One key, from whichever kind of node holds it (embedded or real); counted as get() counts. */
  async fetch(key: string): Promise<string | undefined> {
    const owner = this.owner(key);
    if (!owner) return undefined;
    const node = this.lookupNode(owner, key);
    return node.remote ? this.readRemote(node, key) : this.read(node, key);
  }

  /** cache_requests counts keys (as memcached's get_hits/get_misses do); cache_multiget_requests counts round trips. */
  getMany(keys: readonly string[]): Map<string, string> {
    if (this.remote) throw simError('SG_ERR_INVALID_PARAM', 'the cache is on real memcached: read it with getOrFillMany or fetchMany', {});
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
    if (node.remote && !node.reachable) return;
    const work = currentWork();
    if (work) work.cacheSets++;
    node.sets.inc();
    if (node.remote) {
      node.remote.set(key, value, node.gutter ? this.config.gutterTtlMs : 0).catch((err: unknown) => this.failed(node, 'set', err));
      return;
    }
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
    // An unreachable real node is flushed before it is used again, so it needs no delete now.
    if (node.remote && !node.reachable) return;
    const work = currentWork();
    if (work) work.cacheDeletes++;
    node.deletes.inc();
    if (node.remote) {
      // Sent now, on the node's one connection, so this process's later gets of the key come after
      // it; one that fails leaves the node unreachable, hence flushed before its next use.
      node.remote.delete(key).catch((err: unknown) => this.failed(node, 'delete', err, true));
      return;
    }
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
    const cached = node.remote ? await this.readRemote(node, key) : this.read(node, key);
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
    const found = this.remote ? await this.fetchMany(unique) : this.getMany(unique);
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
    node.stats = null;
    this.updateGauges(node);
  }

  markAlive(name: string): void {
    const node = this.node(name);
    if (node.alive) return;
    node.alive = true;
    // A real node is probed (and flushed) before its first use: it may hold what it held before.
    if (node.remote) this.unreachableNow(node, 0);
  }

  /**
   * A crash: markDead, and on a real node the process is killed (SIGKILL). Refused, with nothing
   * changed, for a real node whose process this one did not start.
   */
  async kill(name: string): Promise<void> {
    const node = this.node(name);
    // Refused, with nothing changed, for a process this one did not start.
    if (node.remote) await node.remote.kill();
    this.markDead(name);
  }

  /** Back from a crash: a real node's process is started again (empty), then markAlive. */
  async revive(name: string): Promise<void> {
    const node = this.node(name);
    if (node.remote) await node.remote.revive();
    this.markAlive(name);
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
    if (node.remote) this.unreachableNow(node, 0);
    this.setRing(this.ring.without(name));
  }

  /** Puts a node (by default a new `cache-K`) on the ring, alive and empty, and returns its name. */
  addNode(name?: string): string {
    let k = this.byName.size - this.gutterNodes.length;
    while (name === undefined && this.byName.has(`cache-${k}`)) k++;
    const chosen = name ?? `cache-${k}`;
    let node = this.byName.get(chosen);
    if (!node) {
      if (this.remote) throw simError('SG_ERR_INVALID_PARAM', `the cache is on real memcached, whose nodes are fixed at start: "${chosen}" has no process (a node taken off the ring can come back)`, { node: chosen, known: this.nodeNames });
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
      items: n.remote ? (n.stats?.items ?? 0) : n.lru.size,
      bytes: n.remote ? (n.stats?.bytes ?? 0) : n.lru.calculatedSize,
      capacityBytes: n.remote && n.stats ? n.stats.capacityBytes : this.config.capacityBytes,
      hits: n.hit.value,
      misses: n.miss.value + n.dead.value,
      evictions: n.evictions.value,
      ...(n.remote
        ? { memcached: { address: n.remote.address, pid: n.stats?.pid || n.remote.pid, controllable: n.remote.controllable, reachable: n.alive && n.reachable, getHits: n.stats?.getHits ?? 0, getMisses: n.stats?.getMisses ?? 0 } }
        : {}),
    }));
  }

  /**
   * Reads every reachable real node's `stats` (items, bytes, evictions, its own hit counts) into
   * nodes() and the cache_items/cache_bytes gauges; the evictions since the last read are added to
   * cache_evictions. A node that does not answer becomes unreachable. No-op when the tier is embedded.
   */
  async pollStats(): Promise<void> {
    if (!this.remote) return;
    await Promise.all(
      [...this.byName.values()].map(async (node) => {
        if (!node.remote || !node.alive || !node.reachable) return;
        try {
          const st = await node.remote.stats();
          const before = node.stats?.pid === st.pid ? node.stats.evictions : 0;
          if (st.evictions > before) node.evictions.inc(st.evictions - before);
          node.stats = st;
          node.setItems(st.items);
          node.setBytes(st.bytes);
        } catch (err) {
          this.failed(node, 'stats', err);
        }
      }),
    );
  }

  /** A lookup on a real node: a failure counts as a dead lookup (and makes the node unreachable for a while). */
  private async readRemote(node: CacheNode, key: string): Promise<string | undefined> {
    const work = currentWork();
    if (work) work.cacheLookups++;
    if (!this.usable(node)) {
      node.dead.inc();
      if (work) work.cacheMisses++;
      return undefined;
    }
    try {
      const value = await node.remote!.get(key);
      (value === undefined ? node.miss : node.hit).inc();
      if (value === undefined && work) work.cacheMisses++;
      return value;
    } catch (err) {
      this.failed(node, 'get', err);
      node.dead.inc();
      if (work) work.cacheMisses++;
      return undefined;
    }
  }

  /** getMany on real nodes: one multiget per node, sent to every node at once; counted as getMany counts. */
  async fetchMany(keys: readonly string[]): Promise<Map<string, string>> {
    if (!this.remote) return this.getMany(keys);
    const byNode = new Map<CacheNode, string[]>();
    for (const key of keys) {
      const owner = this.owner(key);
      if (!owner) continue;
      const node = this.lookupNode(owner, key);
      let list = byNode.get(node);
      if (!list) byNode.set(node, (list = []));
      list.push(key);
    }
    const work = currentWork();
    const found = new Map<string, string>();
    await Promise.all(
      [...byNode].map(async ([node, list]) => {
        node.multiget.inc();
        if (work) work.cacheLookups += list.length;
        let got: Map<string, string> | null = null;
        if (this.usable(node)) {
          try {
            got = await node.remote!.getMany(list);
          } catch (err) {
            this.failed(node, 'get', err);
          }
        }
        if (!got) {
          node.dead.inc(list.length);
          if (work) work.cacheMisses += list.length;
          return;
        }
        if (got.size > 0) node.hit.inc(got.size);
        if (got.size < list.length) node.miss.inc(list.length - got.size);
        if (work) work.cacheMisses += list.length - got.size;
        for (const [k, v] of got) found.set(k, v);
      }),
    );
    return found;
  }

  /**
   * Whether a real node may be asked now: alive and reachable; an unreachable one is probed in the
   * background once its retry time has come (flushed, since it missed deletes while away, then
   * used again), and meanwhile its lookups count as dead.
   */
  private usable(node: CacheNode): boolean {
    if (!node.alive) return false;
    if (node.reachable) return true;
    if (node.probing || this.clock.nowMs() < node.retryAtMs) return false;
    node.probing = true;
    node.remote!.flush().then(
      () => {
        node.probing = false;
        if (!node.alive) return;
        node.reachable = true;
        this.metrics.inc('cache_remote_returns', node.labels);
      },
      () => {
        node.probing = false;
        node.retryAtMs = this.clock.nowMs() + REMOTE_RETRY_MS;
      },
    );
    return false;
  }

  private unreachableNow(node: CacheNode, retryInMs: number): void {
    node.reachable = false;
    // What it said of itself no longer holds (it may have restarted empty); the next sample says.
    node.stats = null;
    node.retryAtMs = this.clock.nowMs() + retryInMs;
  }

  /**
   * A request to a real node failed: counted by operation; a node that did not answer (or lost a
   * delete, which only a flush can make up for) is left alone for REMOTE_RETRY_MS.
   */
  private failed(node: CacheNode, op: string, err: unknown, mustFlush = false): void {
    let c = node.errors.get(op);
    if (!c) node.errors.set(op, (c = this.metrics.counter('cache_remote_errors', { ...node.labels, op })));
    c.inc();
    if (mustFlush || (isSimError(err) && err.code === 'SG_ERR_BACKEND_UNREACHABLE')) {
      if (node.reachable) this.unreachableNow(node, REMOTE_RETRY_MS);
    }
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
      remote: this.remote ? this.remote(name) : null,
      reachable: true,
      retryAtMs: 0,
      probing: false,
      stats: null,
      errors: new Map(),
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
