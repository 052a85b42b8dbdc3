// The virtual-time model of the photo service: iterations of each scenario's declared steps, each
// step a v1 request that visits the topology's queues in stages — the app tier, memcached nodes,
// Redis, pgbouncer pools, replicas, the job workers — exactly where the live code sends it (the
// shared shard map and ring decide), and fan-out as the chunked jobs it is. No HTTP, no wall clock:
// one event per stage of a request, processed in virtual-time order by sim/engine.
//
// Requests and iterations live in typed arrays indexed by a slot (no object per request); per-step
// tallies feed the telemetry (sim/model/snapshot.ts) and a recorder receives every request, as the
// runner's metric registry would.

import { simError } from '../engine/errors.ts';
import { Prng } from '../engine/prng.ts';
import type { Resource } from '../engine/resource.ts';
import { Simulation } from '../engine/simulation.ts';
import { shardForKey } from '../parts/shard-map.ts';
import type { TopologyConfig } from '../topology-config.ts';
import { FullPopulation, liveCelebrityPositions } from '../workload/full-population.ts';
import type { AdminAction } from '../../scenarios/lib/work-types.ts';
import { arrivalTimes, OPS, WHO, type Instr, type OpInstr, type OpName, type PlannedScenario } from './plan.ts';
import { WORK_FIELDS } from '../engine/work-counts.ts';
import { RECIPES, type Step, type StepFamily, type StepKind, type Subject } from './recipes.ts';
import { cacheKey, KEY, keyFamily, keyId, type CacheNode, type DbServer, type KeyFamily, VirtualTopology } from './virtual-topology.ts';

/** What the model tells whoever records a run (the CLI wires it to the runner's k6 metric registry). */
export interface SimRecorder {
  request(scenario: number, op: OpInstr, status: number, durationMs: number, nowMs: number): void;
  iteration(scenario: number, durationMs: number, nowMs: number): void;
  dropped(scenario: number, nowMs: number): void;
  /** Sampled once per step: VUs busy and VUs allocated over all scenarios. */
  vus(busy: number, max: number, nowMs: number): void;
  /** Called at the end of every step, after the step's tallies are in `series`. */
  step?(nowMs: number): void;
}

export interface TopologyEventRecord {
  t: number;
  kind: string;
  label: string;
  detail: Record<string, unknown>;
}

/** Per-step tallies (one row per step of `stepMs`), read by the snapshot builder. */
export class StepSeries {
  readonly t: number[] = [];
  readonly requests: number[] = [];
  readonly cacheHits: number[][] = [];
  readonly cacheLookups: number[][] = [];
  readonly cacheBytes: number[][] = [];
  readonly fills: number[] = [];
  readonly herd: number[] = [];
  readonly herdFills: number[] = [];
  readonly evictions: number[] = [];
  readonly serverOps: number[][] = [];
  readonly poolInUse: number[][] = [];
  readonly poolWaiting: number[][] = [];
  readonly replicaLag: number[][] = [];
  readonly shardBands: number[][] = [];
  readonly topShards: Array<Array<[number, number]>> = [];
  readonly deliveries: number[] = [];
  readonly queueDepth: number[] = [];
  readonly running: number[] = [];
  readonly staleReads: number[] = [];
  readonly redisOps: number[] = [];
  /** Utilisation (busy time ÷ capacity) per resource name per step. */
  readonly use: Map<string, number[]> = new Map();
  readonly refusals: Map<string, number[]> = new Map();
}

/** An admin action the model takes at the current virtual time (a scenario's admin step, a dashboard's button). */
export type ModelAction = AdminAction;

export interface ModelOptions {
  config: TopologyConfig;
  seed: number;
  population: { accounts: number; avgFollows: number; celebrities: number; mediaPerUser: number; celebrityReach?: number };
  scenarios: PlannedScenario[];
  recorder: SimRecorder;
  /** Empty caches (as after a restart) instead of the warm steady state. */
  cold?: boolean;
  stepMs?: number;
  /** Fail after this many events (a budget on the whole loop). */
  maxEvents?: number;
  onProgress?: (nowMs: number, events: number) => void;
}

const ST_OK = 200;
const ST_UNAVAILABLE = 503;
const ST_NOT_FOUND = 404;
/** Keys a request may carry between its stages (a feed page, its misses, pulls). */
const KEYS_PER_SLOT = 48;
const HOT_BANDS = 64;
const MG_K = 4;
/**
 * Lease waits one request makes at most before it reads the database anyway (count): a client
 * told to wait looks again every leaseRetryMs while another holds the key's token (Facebook's
 * clients retry the same way); the bound keeps a key deleted faster than it can be filled from
 * holding a reader forever.
 */
const MAX_LEASE_WAITS = 20;
/** What loaded a shard, as the report names it; a query is counted under one of these. */
const SHARD_KINDS = ['media', 'recent', 'user_media', 'like', 'comment', 'follow', 'signup', 'upload', 'fanout', 'token', 'user', 'block', 'graph', 'like_check', 'activity', 'counts', 'tag'] as const;
const [K_MEDIA, K_RECENT, K_USER_MEDIA, K_LIKE, K_COMMENT, K_FOLLOW, K_SIGNUP, K_UPLOAD, K_FANOUT] = [0, 1, 2, 3, 4, 5, 6, 7, 8] as const;
/** A recipe step's shard kind, by name (its index in SHARD_KINDS). */
const STEP_KIND: Record<StepKind, number> = Object.fromEntries(SHARD_KINDS.map((k, i) => [k, i])) as Record<StepKind, number>;
const STEP_FAMILY: Record<StepFamily, KeyFamily> = { user: KEY.user, token: KEY.token, blocks: KEY.blocks, blockedEither: KEY.blockedEither, media: KEY.media };
/** A request's stage once its recipe's tail has run: the answer is sent when it ends. */
const STAGE_ANSWER = 98;
/** A request's stage while its recipe's `pre` (with the token) or `tail` waits on a fill's read. */
const STAGE_HEAD = 96;
const STAGE_TAIL = 97;
/** The standard normal's 99th percentile: a log-normal's σ is ln(p99 ÷ median) ÷ this. */
const P99_Z = 2.3263;
/** Likers and commenters a media object lists (photo-store getMediaMany: LIMIT 4 and LIMIT 8). */
const LIKERS_SHOWN = 4;
const COMMENTS_SHOWN = 8;
/** Accounts a feed page's list is drawn from, at most (a list holds the photos of the accounts followed). */
const MAX_FEED_SOURCES = 512;
/** Photos of each followed account the live seeding puts on a feed list (sim/workload/population.ts). */
const FEED_POSTS_PER_AUTHOR = 5;
/** Entries a feed page is chosen from, at most (2^12: an index packs below a date in one number). */
const ENTRY_SLOTS = 4096;
const TOKEN_STEP: Step = { get: 'token', of: 'actor', kind: 'token' };
type RoutedOp = Exclude<OpName, 'admin'>;
/** Per op, the steps before its main stages (the token's lookup first when it authenticates), and after them. */
const HEAD_STEPS = Object.fromEntries(Object.entries(RECIPES).map(([op, r]) => [op, r.authenticated ? [TOKEN_STEP, ...r.pre] : r.pre])) as Record<RoutedOp, Step[]>;
const TAIL_STEPS = Object.fromEntries(Object.entries(RECIPES).map(([op, r]) => [op, r.tail])) as Record<RoutedOp, Step[]>;
/** Figures per row of the work tally, and each one's column (the order of WORK_FIELDS). */
const WF = WORK_FIELDS.length;
const [W_LOOKUPS, W_MISSES, W_WAITS, W_SETS, W_DELETES, W_DB_READS, W_DB_WRITES, W_REDIS, W_JOBS, W_DELIVERIES] = (
  ['cacheLookups', 'cacheMisses', 'cacheWaits', 'cacheSets', 'cacheDeletes', 'dbReads', 'dbWrites', 'redisCommands', 'jobsQueued', 'feedDeliveries'] as const
).map((f) => WORK_FIELDS.indexOf(f)) as [number, number, number, number, number, number, number, number, number, number];
/** Each op's row in the work tally; the two job rows follow the ops. */
const OP_INDEX = Object.fromEntries(OPS.map((op, i) => [op, i])) as Record<OpName, number>;
export const WORK_ROW_FANOUT = OPS.length;
export const WORK_ROW_FANOUT_CHUNK = OPS.length + 1;
export const WORK_ROW_RESIZE = OPS.length + 2;
export const WORK_ROW_NOTIFY = OPS.length + 3;
const WORK_ROWS = OPS.length + 4;

export class VirtualModel {
  readonly sim = new Simulation();
  readonly topo: VirtualTopology;
  readonly pop: FullPopulation;
  readonly series = new StepSeries();
  readonly events: TopologyEventRecord[] = [];
  readonly stepMs: number;
  readonly endMs: number;
  readonly warm: { cold: boolean; keys: number; bytes: number; accounts: number };
  private readonly cfg: TopologyConfig;
  private readonly rng: Prng;
  /** capacity.sharedThread: every part's work is also the app thread's (part). */
  private readonly sharedThread: boolean;
  /** Draws of service times (a calibrated cpuSpread), apart from the workload's draws. */
  private readonly serviceRng: Prng;
  private readonly rec: SimRecorder;
  private readonly scenarios: PlannedScenario[];
  private begun = false;
  /** Logical shards being copied to another server (shard → the server it leaves). */
  private readonly moving = new Map<number, number>();
  /** The mean extra service time of every query (ms): the config's, until an admin action sets it. */
  private serviceTimeMs: number;

  // --- iteration slots (one request in flight per iteration)
  private cap = 0;
  private freeSlots: number[] = [];
  private itScenario = new Int32Array(0);
  private itPc = new Int32Array(0);
  private itRepeat = new Int32Array(0);
  private itNew = new Float64Array(0);
  private itMedia = new Float64Array(0);
  private itMediaOwner = new Float64Array(0);
  private itStart = new Float64Array(0);
  private itVu = new Int32Array(0);
  /** The iteration's `user` and `celebrity` accounts, picked on first use (−1: not yet). */
  private itUser = new Float64Array(0);
  private itCeleb = new Float64Array(0);
  private rqStage = new Int32Array(0);
  private rqStart = new Float64Array(0);
  private rqActor = new Float64Array(0);
  private rqTarget = new Float64Array(0);
  private rqStatus = new Int32Array(0);
  private rqNKeys = new Int32Array(0);
  private rqNMiss = new Int32Array(0);
  /** Cache keys the request missed in all (its app CPU per missed key, capacity.missCpuMs, is charged before the answer). */
  private rqMissed = new Int32Array(0);
  /** The wake-up the request pays with its CPU: its share of what its worker owes when it arrives (capacity.wakeMs, wakeShare). */
  private rqWake = new Float64Array(0);
  private rqNFill = new Int32Array(0);
  private rqKeys = new Float64Array(0);
  /** Per key of rqKeys, the index of its cache node (−1: none), found under ring version rqRing[slot]. */
  private rqNode = new Int16Array(0);
  private rqRing = new Int32Array(0);
  /** Lease waits the request has made (count). */
  private rqWaits = new Int32Array(0);
  /** The media keys of the request's page (a feed page, a profile's page, one photo), for its recipe's owner lookups. */
  private rqPage = new Float64Array(0);
  private rqPageN = new Int32Array(0);
  /** The next step of the recipe phase the request is in, and the keys its last step read to set when the read returns (rqKeys, rqNKeys of them). */
  private rqStep = new Int32Array(0);
  /** A follow of an account already followed (its recipe's `ifWritten` steps are skipped). */
  private rqAlready = new Int32Array(0);

  // --- scenarios
  private busyVus: Int32Array;
  private maxVus: Int32Array;
  private arrivals: Array<{ next(): number } | null>;
  /** Closed loops: iterations left (shared-iterations) and whether each scenario's VUs still loop. */
  private sharedLeft: Int32Array;

  // --- fan-out: posts in flight
  private postStart: number[] = [];
  private postChunksLeft: number[] = [];
  private postLast: number[] = [];
  private postFree: number[] = [];
  readonly fanout = { posts: 0, pushed: 0, pulled: 0, completed: 0, failures: 0, deliveries: 0, lags: [] as number[], sizes: [] as number[], deliveryLag: [] as number[], deliveryWeight: [] as number[], lagWindows: new Map<number, number[]>() };
  private stepDeliveries = 0;
  /** The longest post → last delivery of the posts completed in the current step (ms; −1 with none). */
  stepFanoutLagMax = -1;

  // --- the work each request does, in the live work meter's figures (sim/engine/work-counts.ts):
  // a row per op, then the fanout and fanout-chunk jobs; wRow is the row being counted (−1: none).
  readonly work = new Float64Array(WORK_ROWS * WF);
  readonly workCount = new Float64Array(WORK_ROWS);
  readonly workFailed = new Float64Array(WORK_ROWS);
  private wRow = -1;
  /** The request slot whose misses `w` counts (−1: a job's work). */
  private wSlot = -1;

  // --- tallies
  readonly shardOps: Float64Array;
  private stepShardOps: Float64Array;
  private mgId: Float64Array;
  private mgCount: Float64Array;
  /** Queries per logical shard per kind (SHARD_KINDS), row-major: shard × kinds. */
  private readonly shardKindCounts: Float64Array;
  private stepFills = 0;
  private stepHerd = 0;
  private stepHerdFills = 0;
  private stepStale = 0;
  private stepRequests = 0;
  private stepRedis = 0;
  staleReads = 0;
  redisOps = 0;
  fills = 0;
  herdEvents = 0;
  herdFills = 0;
  requests = 0;
  /** Recent writes per key (their replica apply time), for stale reads and read-your-writes. */
  private recentWrites = new Map<number, number>();
  private lastBusy = new Map<string, number>();
  /** The wake-up the app worker still owes (ms; capacity.wakeMs, wakeShare). */
  private wakeOwed = 0;
  private lastRefused = new Map<string, number>();
  private inFlightFills = new Map<number, number>();

  // handler ids
  private readonly H_ARRIVE: number;
  private readonly H_STAGE: number;
  private readonly H_VU: number;
  private readonly H_SAMPLE: number;
  private readonly H_CHUNK: number;
  private readonly H_CHUNK_DONE: number;
  private readonly H_SPLIT_DONE: number;
  private readonly H_MOVE_DONE: number;

  constructor(readonly opts: ModelOptions) {
    this.cfg = opts.config;
    this.serviceTimeMs = opts.config.database.serviceTimeMs;
    this.rng = new Prng(opts.seed).fork('virtual-model');
    this.serviceRng = new Prng(opts.seed).fork('service-times');
    this.sharedThread = opts.config.capacity.sharedThread;
    this.rec = opts.recorder;
    this.scenarios = opts.scenarios;
    this.topo = new VirtualTopology(opts.config);
    const signups = this.expectedSignups();
    this.pop = new FullPopulation(
      opts.population,
      opts.config.shards,
      new Prng(opts.seed).fork('population'),
      opts.population.accounts + signups,
      // The celebrities where a live seeding with this seed puts them (the same signup positions, so the same shards).
      liveCelebrityPositions(opts.seed, opts.population.accounts, opts.population.celebrities),
    );
    this.endMs = Math.max(0, ...opts.scenarios.map((s) => s.endMs));
    this.stepMs = opts.stepMs ?? Math.max(1000, Math.ceil(this.endMs / 720 / 1000) * 1000);
    const L = opts.config.shards.logical;
    this.shardOps = new Float64Array(L);
    this.stepShardOps = new Float64Array(L);
    this.mgId = new Float64Array(L * MG_K).fill(-1);
    this.mgCount = new Float64Array(L * MG_K);
    this.shardKindCounts = new Float64Array(L * SHARD_KINDS.length);
    const n = opts.scenarios.length;
    this.busyVus = new Int32Array(n);
    this.maxVus = new Int32Array(n);
    this.sharedLeft = new Int32Array(n);
    this.arrivals = opts.scenarios.map(() => null);
    this.H_ARRIVE = this.sim.on((s) => this.arrive(s));
    this.H_STAGE = this.sim.on((slot) => this.stage(slot));
    this.H_VU = this.sim.on((s, vu) => this.vuLoop(s, vu));
    this.H_SAMPLE = this.sim.on(() => this.sample());
    this.H_CHUNK = this.sim.on((post, k) => this.chunkRedis(post, k));
    this.H_CHUNK_DONE = this.sim.on((post) => this.chunkDone(post));
    this.H_SPLIT_DONE = this.sim.on((server, to) => this.splitDone(server, to));
    this.H_MOVE_DONE = this.sim.on((shard, to) => this.moveDone(shard, to));
    this.grow(256);
    this.warm = opts.cold ? { cold: true, keys: 0, bytes: 0, accounts: 0 } : this.warmCaches();
  }

  /** Signups the plan will make at most (to size the population's arrays once). */
  private expectedSignups(): number {
    let total = 0;
    for (const s of this.scenarios) {
      const per = s.program.some((i) => i.kind === 'op' && i.op === 'signup') ? 1 : 0;
      if (!per) continue;
      const o = s.options;
      if (o.executor === 'constant-arrival-rate') total += Math.ceil((o.rate * o.durationMs) / o.timeUnitMs) + 1;
      else if (o.executor === 'ramping-arrival-rate') {
        let r0 = o.startRate;
        for (const st of o.stages) {
          total += Math.ceil((((r0 + st.target) / 2) * st.durationMs) / o.timeUnitMs) + 1;
          r0 = st.target;
        }
      } else if (o.executor === 'shared-iterations') total += o.iterations;
      else if (o.executor === 'per-vu-iterations') total += o.iterations * o.vus;
      else total += 1_000_000;
    }
    return total;
  }

  /**
   * The warm steady state: weeks of requests leave the most-followed accounts' photos and objects
   * in the cache. Fills up to 90% of the ring's capacity, least popular first.
   */
  private warmCaches(): { cold: boolean; keys: number; bytes: number; accounts: number } {
    const b = this.cfg.capacity.objectBytes;
    const pop = this.pop;
    // What requests by and about an account read: its photos, its user object, token and block lists.
    const perAccount = b.user + b.token + 2 * b.blocks + b.media * pop.slot / 2;
    const totalCap = this.topo.caches.reduce((a, n) => a + (n.gutter ? 0 : n.capacityBytes), 0);
    const take = Math.min(pop.base, Math.floor((0.9 * totalCap) / perAccount));
    let keys = 0;
    const put = (family: KeyFamily, id: number, size: number): void => {
      const node = this.topo.nodeOf(family, id);
      if (!node) return;
      node.lru.set(cacheKey(family, id), size);
      keys++;
    };
    for (let r = take - 1; r >= 0; r--) {
      // Base accounts are indexed by rank: the most followed are set last, so they are the most recent.
      for (let i = 0; i < pop.mediaCount(r); i++) put(KEY.media, r * pop.slot + i, b.media);
      put(KEY.user, r, b.user);
      put(KEY.token, r, b.token);
      put(KEY.blocks, r, b.blocks);
      put(KEY.blockedEither, r, b.blocks);
    }
    const bytes = this.topo.caches.reduce((a, n) => a + n.lru.bytes, 0);
    for (const n of this.topo.caches) n.peakBytes = n.lru.bytes;
    return { cold: false, keys, bytes, accounts: take };
  }

  // ------------------------------------------------------------------------------- slots

  private grow(cap: number): void {
    const old = this.cap;
    const f64 = (a: Float64Array, per = 1) => {
      const x = new Float64Array(cap * per);
      x.set(a);
      return x;
    };
    const i32 = (a: Int32Array) => {
      const x = new Int32Array(cap);
      x.set(a);
      return x;
    };
    this.itScenario = i32(this.itScenario);
    this.itPc = i32(this.itPc);
    this.itRepeat = i32(this.itRepeat);
    this.itNew = f64(this.itNew);
    this.itMedia = f64(this.itMedia);
    this.itMediaOwner = f64(this.itMediaOwner);
    this.itStart = f64(this.itStart);
    this.itVu = i32(this.itVu);
    this.itUser = f64(this.itUser);
    this.itCeleb = f64(this.itCeleb);
    this.rqStage = i32(this.rqStage);
    this.rqStart = f64(this.rqStart);
    this.rqActor = f64(this.rqActor);
    this.rqTarget = f64(this.rqTarget);
    this.rqStatus = i32(this.rqStatus);
    this.rqNKeys = i32(this.rqNKeys);
    this.rqNMiss = i32(this.rqNMiss);
    this.rqMissed = i32(this.rqMissed);
    this.rqWake = f64(this.rqWake);
    this.rqNFill = i32(this.rqNFill);
    this.rqKeys = f64(this.rqKeys, KEYS_PER_SLOT);
    const node = new Int16Array(cap * KEYS_PER_SLOT);
    node.set(this.rqNode);
    this.rqNode = node;
    this.rqRing = i32(this.rqRing);
    this.rqWaits = i32(this.rqWaits);
    this.rqPage = f64(this.rqPage, KEYS_PER_SLOT);
    this.rqPageN = i32(this.rqPageN);
    this.rqStep = i32(this.rqStep);
    this.rqAlready = i32(this.rqAlready);
    for (let i = cap - 1; i >= old; i--) this.freeSlots.push(i);
    this.cap = cap;
  }

  private takeSlot(): number {
    if (this.freeSlots.length === 0) {
      if (this.cap >= 10_000_000) throw simError('SG_ERR_BUDGET_EXHAUSTED', 'more than 10,000,000 iterations in flight at once');
      this.grow(this.cap * 2);
    }
    return this.freeSlots.pop()!;
  }

  // ------------------------------------------------------------------------------- running

  /** Runs the whole plan; returns the events processed. */
  run(): number {
    this.begin();
    this.advance(this.horizonMs);
    return this.end();
  }

  /**
   * Where the run stops (virtual ms): the scenarios' end, then their graceful stop, within which the
   * work still queued (fan-out, iterations finishing) runs to completion.
   */
  get horizonMs(): number {
    return this.endMs + Math.max(0, ...this.scenarios.map((s) => s.options.gracefulStopMs));
  }

  /** Starts the scenarios and the sampling (once, before the first advance). */
  begin(): void {
    if (this.begun) throw simError('SG_ERR_INVALID_PARAM', 'the model has already begun');
    this.begun = true;
    this.scenarios.forEach((s, i) => this.startScenario(s, i));
    this.sim.at(this.stepMs, this.H_SAMPLE);
  }

  /**
   * Processes events up to `untilMs` (at most the horizon), or `stopAfter` of them, whichever is
   * first: a run in pieces (a dashboard pausing and stepping it) processes the same events in the
   * same order as one call, so its result is the same. Returns the events processed by this call.
   */
  advance(untilMs: number, stopAfter?: number): number {
    return this.sim.run({ untilMs: Math.min(untilMs, this.horizonMs), maxEvents: this.opts.maxEvents ?? 2_000_000_000, onProgress: this.opts.onProgress, progressEvery: 2_000_000, ...(stopAfter !== undefined ? { stopAfter } : {}) });
  }

  /** The last sample (after the last advance); returns the events processed in all. */
  end(): number {
    this.sample(true);
    return this.sim.events;
  }

  /**
   * An admin action now, at the current virtual time, as a scenario's admin step takes it (the
   * dashboard's buttons in simulate mode); it is listed among the events.
   */
  act(a: ModelAction): void {
    this.admin(a);
  }

  private startScenario(s: PlannedScenario, i: number): void {
    const o = s.options;
    switch (o.executor) {
      case 'constant-arrival-rate':
      case 'ramping-arrival-rate': {
        this.maxVus[i] = o.maxVUs;
        const gen = arrivalTimes(o);
        this.arrivals[i] = gen;
        const t = gen.next();
        if (t >= 0) this.sim.at(t, this.H_ARRIVE, i);
        break;
      }
      case 'shared-iterations':
        this.sharedLeft[i] = o.iterations;
        this.maxVus[i] = o.vus;
        for (let v = 0; v < o.vus; v++) this.sim.at(o.startTimeMs, this.H_VU, i, v);
        break;
      case 'per-vu-iterations':
        this.maxVus[i] = o.vus;
        for (let v = 0; v < o.vus; v++) this.sim.at(o.startTimeMs, this.H_VU, i, v * 1_000_000 + o.iterations);
        break;
      case 'constant-vus':
        this.maxVus[i] = o.vus;
        for (let v = 0; v < o.vus; v++) this.sim.at(o.startTimeMs, this.H_VU, i, v);
        break;
      case 'ramping-vus': {
        // A VU joins when the target first exceeds its number and loops while the target (at its
        // iteration's start) still covers it.
        let peak = o.startVUs;
        for (const st of o.stages) peak = Math.max(peak, st.target);
        this.maxVus[i] = peak;
        for (let v = 0; v < peak; v++) {
          const t = this.rampingJoin(o, v);
          if (t >= 0) this.sim.at(o.startTimeMs + t, this.H_VU, i, v);
        }
        break;
      }
    }
  }

  /** Target VUs of a ramping-vus scenario at `t` ms into it. */
  private rampingTarget(o: Extract<PlannedScenario['options'], { executor: 'ramping-vus' }>, t: number): number {
    let from = o.startVUs;
    let at = 0;
    for (const st of o.stages) {
      if (t < at + st.durationMs) return from + ((st.target - from) * (t - at)) / Math.max(1, st.durationMs);
      at += st.durationMs;
      from = st.target;
    }
    return -1;
  }

  /** When VU `v` of a ramping-vus scenario first has work: the target first exceeds v. */
  private rampingJoin(o: Extract<PlannedScenario['options'], { executor: 'ramping-vus' }>, v: number): number {
    if (o.startVUs > v) return 0;
    let from = o.startVUs;
    let at = 0;
    for (const st of o.stages) {
      if (st.target > v && from <= v) return at + ((v - from) / (st.target - from)) * st.durationMs;
      at += st.durationMs;
      from = st.target;
    }
    return -1;
  }

  private arrive(s: number): void {
    const now = this.sim.now;
    if (this.busyVus[s]! >= this.maxVus[s]!) this.rec.dropped(s, now);
    else this.startIteration(s, -1);
    const t = this.arrivals[s]!.next();
    if (t >= 0) this.sim.at(Math.max(t, now), this.H_ARRIVE, s);
  }

  /** A closed-loop VU: starts its next iteration if its executor still wants one. */
  private vuLoop(s: number, vu: number): void {
    const plan = this.scenarios[s]!;
    const o = plan.options;
    const now = this.sim.now;
    if (now >= plan.endMs) return;
    switch (o.executor) {
      case 'shared-iterations':
        if (this.sharedLeft[s]! <= 0) return;
        this.sharedLeft[s]!--;
        break;
      case 'per-vu-iterations': {
        const left = vu % 1_000_000;
        if (left <= 0) return;
        vu -= 1;
        break;
      }
      case 'ramping-vus':
        if (this.rampingTarget(o, now - o.startTimeMs) <= vu % 1_000_000) return;
        break;
      default:
        break;
    }
    this.startIteration(s, vu);
  }

  private startIteration(s: number, vu: number): void {
    const slot = this.takeSlot();
    this.busyVus[s]!++;
    this.itScenario[slot] = s;
    this.itPc[slot] = 0;
    this.itRepeat[slot] = -1;
    this.itNew[slot] = -1;
    this.itMedia[slot] = -1;
    this.itMediaOwner[slot] = -1;
    this.itStart[slot] = this.sim.now;
    this.itVu[slot] = vu;
    this.itUser[slot] = -1;
    this.itCeleb[slot] = -1;
    this.nextOp(slot);
  }

  /** Advances the iteration's program to its next request (or ends the iteration). */
  private nextOp(slot: number): void {
    const s = this.itScenario[slot]!;
    const program = this.scenarios[s]!.program;
    for (;;) {
      const pc = this.itPc[slot]!;
      const ins = program[pc] as Instr | undefined;
      if (!ins) return this.endIteration(slot);
      if (ins.kind === 'jump') {
        this.itPc[slot] = ins.to;
        continue;
      }
      if (ins.kind === 'choice') {
        const u = this.rng.next();
        let b = 0;
        while (b < ins.cum.length - 1 && u >= ins.cum[b]!) b++;
        this.itPc[slot] = ins.to[b]!;
        continue;
      }
      if (ins.kind === 'sleep') {
        this.itPc[slot] = pc + 1;
        this.rqStage[slot] = -1;
        this.sim.after(ins.ms, this.H_STAGE, slot);
        return;
      }
      // An op; `count` repeats it.
      if (this.itRepeat[slot]! < 0) this.itRepeat[slot] = ins.count;
      if (this.itRepeat[slot] === 0 || this.skip(slot, ins)) {
        this.itRepeat[slot] = -1;
        this.itPc[slot] = pc + 1;
        continue;
      }
      this.itRepeat[slot]!--;
      this.beginRequest(slot, ins);
      return;
    }
  }

  /** Steps that cannot run: acting as `new` without a signup, or on media that a read did not return. */
  private skip(slot: number, ins: OpInstr): boolean {
    if (ins.who === WHO.new && this.itNew[slot]! < 0 && ins.op !== 'signup' && ins.op !== 'admin') return true;
    if ((ins.op === 'like' || ins.op === 'comment' || ins.op === 'media') && this.itMedia[slot]! < 0) return true;
    return false;
  }

  private endIteration(slot: number): void {
    const s = this.itScenario[slot]!;
    const now = this.sim.now;
    this.rec.iteration(s, now - this.itStart[slot]!, now);
    this.busyVus[s]!--;
    const vu = this.itVu[slot]!;
    this.freeSlots.push(slot);
    if (vu >= 0) {
      const o = this.scenarios[s]!.options;
      this.vuLoop(s, o.executor === 'per-vu-iterations' ? vu : vu);
    }
  }

  /** The account a step acts as: one per iteration for each of `user` and `celebrity`, picked on first use. */
  private actor(slot: number, who: number): number {
    if (who === WHO.new) return this.itNew[slot]!;
    if (who === WHO.celebrity) {
      if (this.itCeleb[slot]! < 0) this.itCeleb[slot] = this.pop.celebrity(this.rng);
      return this.itCeleb[slot]!;
    }
    if (this.itUser[slot]! < 0) this.itUser[slot] = this.pop.uniform(this.rng);
    return this.itUser[slot]!;
  }

  private target(slot: number, ins: OpInstr): number {
    if (ins.whomCeleb > 0 && (ins.whomCeleb >= 1 || this.rng.next() < ins.whomCeleb)) return this.pop.celebrity(this.rng);
    // Acted on: a fresh pick at each use, uniform over the base (as the live function picks from its roster).
    if (ins.whomWho === WHO.new) return this.itNew[slot]!;
    return this.pop.uniform(this.rng);
  }

  private currentOp(slot: number): OpInstr {
    return this.scenarios[this.itScenario[slot]!]!.program[this.itPc[slot]!] as OpInstr;
  }

  private beginRequest(slot: number, ins: OpInstr): void {
    const now = this.sim.now;
    this.wRow = OP_INDEX[ins.op] * WF;
    this.wSlot = slot;
    this.rqMissed[slot] = 0;
    // The wake-up, paid with the request's CPU (calibrated; 0 in the 2012 model): its worker's idle
    // time builds a debt towards wakeMs, and each request pays wakeShare of what is owed, so the cold
    // state wears off over the next requests (with wakeShare 1 the first pays it all).
    const c = this.cfg.capacity;
    if (c.wakeMs > 0) {
      this.wakeOwed += (c.wakeMs - this.wakeOwed) * (1 - Math.exp(-this.topo.app.idleFor(now) / c.wakeTauMs));
      const pay = this.wakeOwed * c.wakeShare;
      this.wakeOwed -= pay;
      this.rqWake[slot] = pay;
    } else this.rqWake[slot] = 0;
    this.rqStage[slot] = 0;
    this.rqStart[slot] = now;
    this.rqStatus[slot] = ST_OK;
    this.rqActor[slot] = ins.op === 'signup' ? -1 : this.actor(slot, ins.who);
    this.rqTarget[slot] = ins.op === 'follow' || ins.op === 'user_media' ? this.target(slot, ins) : -1;
    this.rqNKeys[slot] = 0;
    this.rqNMiss[slot] = 0;
    this.rqNFill[slot] = 0;
    this.rqWaits[slot] = 0;
    this.rqPageN[slot] = 0;
    this.rqAlready[slot] = 0;
    if (ins.op === 'admin') {
      this.admin(ins.admin!);
      this.finishRequest(slot, ins, now);
      return;
    }
    // The access token's lookup and the route's checks before its main work (its recipe's `pre`),
    // then the app worker's CPU for the route (a signup also hashes the password).
    this.rqStep[slot] = 0;
    this.rqNKeys[slot] = 0;
    this.runPhase(slot, ins, STAGE_HEAD, now);
  }

  /**
   * Runs the request's recipe steps of one phase from rqStep on, one after another from `at`. A step
   * whose cache lookup missed yields: its read returns as an event (STAGE_HEAD or STAGE_TAIL), where
   * what it read is set on the node serving the key then, and the phase goes on. At the end of the
   * head the app worker's CPU follows; at the end of the tail, the answer.
   */
  private runPhase(slot: number, ins: OpInstr, phase: number, at: number): void {
    const now = this.sim.now;
    const steps = phase === STAGE_HEAD ? HEAD_STEPS[ins.op as RoutedOp] : TAIL_STEPS[ins.op as RoutedOp];
    for (let i = this.rqStep[slot]!; i < steps.length; i++) {
      this.rqNKeys[slot] = 0;
      const end = this.runStep(slot, ins, steps[i]!, at);
      if (end < 0) {
        if (phase === STAGE_HEAD) return this.fail(slot, now);
        this.rqStatus[slot] = ST_UNAVAILABLE;
        return this.finishRequest(slot, ins, now);
      }
      if (this.rqNKeys[slot]! > 0) {
        this.rqStep[slot] = i + 1;
        this.rqStage[slot] = phase;
        this.sim.at(end, this.H_STAGE, slot);
        return;
      }
      at = end;
    }
    if (phase === STAGE_TAIL) {
      // The app's work for each key it missed (rows to objects, objects to the cache), when calibrated.
      const missCpu = this.rqMissed[slot]! > 0 ? this.cfg.capacity.missCpuMs[ins.op as keyof typeof this.cfg.capacity.missCpuMs] * this.rqMissed[slot]! : 0;
      if (missCpu > 0) {
        at = this.visit(this.topo.app, at, missCpu);
        if (at < 0) return this.fail(slot, now);
      }
      if (at <= now) return this.finishRequest(slot, ins, now);
      this.rqStage[slot] = STAGE_ANSWER;
      this.sim.at(at, this.H_STAGE, slot);
      return;
    }
    const c = this.cfg.capacity;
    const op = ins.op as keyof typeof c.cpuMs;
    // A calibrated spread draws the app CPU (median cpuMs) from its own stream, so the other draws stay the same.
    const spread = c.cpuSpread[op];
    const median = c.cpuMs[op];
    // The password hash: on the app worker (a gunicorn worker hashes); on the shared thread, in libuv's pool beside it (a wait, after the CPU).
    const hash = ins.op === 'signup' ? c.passwordHashMs : 0;
    let cpu = (spread > 1 ? this.serviceRng.lognormal(median, Math.log(spread) / P99_Z) : median) + (this.sharedThread ? 0 : hash);
    cpu += this.rqWake[slot]!;
    const cpuEnd = this.visit(this.topo.app, at, cpu);
    if (cpuEnd < 0) return this.fail(slot, now);
    const end = this.sharedThread ? cpuEnd + hash : cpuEnd;
    this.rqStage[slot] = 1;
    this.rqNKeys[slot] = 0;
    this.sim.at(end, this.H_STAGE, slot);
  }

  /** A recipe step's reads returned: what they read is set on the node serving each key now (look-aside). */
  private setRead(slot: number, now: number): void {
    const base = slot * KEYS_PER_SLOT;
    const c = this.cfg.capacity;
    for (let i = 0; i < this.rqNKeys[slot]!; i++) {
      const key = this.rqKeys[base + i]!;
      const family = keyFamily(key);
      const owner = this.topo.nodeOf(family, keyId(key));
      const node = owner && this.topo.serving(owner, key);
      if (this.inFlightFills.get(key) === now) this.inFlightFills.delete(key);
      if (!node?.alive) continue;
      if (this.topo.leases && !this.topo.leases.filled(key, now)) continue; // deleted meanwhile: not stored
      node.lru.set(key, this.sizeOf(family), node.gutter ? now + this.cfg.cache.gutterTtlMs : Infinity);
      if (node.lru.bytes > node.peakBytes) node.peakBytes = node.lru.bytes;
      this.part(node.server, now, c.memcachedOpUs / 1000);
      this.w(W_SETS);
    }
    this.rqNKeys[slot] = 0;
  }

  // ------------------------------------------------------------------------------- recipes

  /** Remembers the media keys the request's multiget is about to look up: its page. */
  private notePage(slot: number): void {
    const base = slot * KEYS_PER_SLOT;
    let n = 0;
    for (let i = 0; i < this.rqNKeys[slot]!; i++) {
      const key = this.rqKeys[base + i]!;
      if (keyFamily(key) === KEY.media) this.rqPage[base + n++] = key;
    }
    this.rqPageN[slot] = n;
  }

  /** The account a recipe step names, or −1 when there is none (a signup before its account exists). */
  private subject(slot: number, ins: OpInstr, who: Subject): number {
    switch (who) {
      case 'actor':
      case 'new':
        return this.rqActor[slot]!;
      case 'target':
        return this.rqTarget[slot]!;
      case 'owner':
        return ins.op === 'upload' ? this.rqActor[slot]! : this.itMediaOwner[slot]!;
      case 'tag':
        return -1;
    }
  }

  /**
   * One step of the op's recipe (sim/model/recipes.ts), starting at `at`: the parts it visits are
   * admitted one after another; returns when it ends (−1: a budget refused it). Jobs and deletes do
   * not hold the request.
   */
  private runStep(slot: number, ins: OpInstr, step: Step, at: number): number {
    const actor = this.rqActor[slot]!;
    const q = this.cfg.capacity.queryMs;
    const pageEmpty = this.rqPageN[slot] === 0;
    if (step.ifWritten && this.rqAlready[slot]) return at;
    // unlessSelf: the step is skipped when the actor acts on their own account or media.
    const self = actor === this.subject(slot, ins, ins.op === 'follow' || ins.op === 'user_media' ? 'target' : 'owner');
    if ('getOwners' in step) return pageEmpty ? at : this.ownersLookup(slot, at);
    if ('get' in step) {
      if (step.ifPage && pageEmpty) return at;
      const who = this.subject(slot, ins, step.of);
      if (who < 0 || (step.unlessSelf && self)) return at;
      const family = STEP_FAMILY[step.get];
      const id = family === KEY.media ? (ins.op === 'upload' ? this.pop.lastMedia[who]! : this.itMedia[slot]!) : who;
      if (id < 0) return at;
      return this.lookAsideOne(slot, family, id, family === KEY.media ? this.mediaOwner(id) : who, STEP_KIND[step.kind], at);
    }
    if ('read' in step) {
      if (step.ifPage && pageEmpty) return at;
      const who = this.subject(slot, ins, step.on);
      if (who < 0 || (step.unlessSelf && self)) return at;
      return this.dbQuery(this.pop.shard[who]!, who, at, step.read === 'pk' ? q.pkRead : q.rangeRead, false, actor, STEP_KIND[step.kind]);
    }
    if ('write' in step) {
      if (step.on === 'tag') {
        // One write per hashtag of the caption the live function picks (uniformly), on the shard of the tag's hash.
        const captions = ins.tags;
        const tags = captions.length === 0 ? [] : captions[captions.length === 1 ? 0 : Math.floor(this.rng.next() * captions.length)]!;
        for (const tag of tags) if (at >= 0) at = this.dbWrite(shardForKey(tag, this.cfg.shards.logical), actor, at, actor, STEP_KIND[step.write]);
        return at;
      }
      const who = this.subject(slot, ins, step.on);
      if (who < 0 || (step.unlessSelf && self)) return at;
      return this.dbWrite(this.pop.shard[who]!, who, at, actor, STEP_KIND[step.write]);
    }
    if ('del' in step) {
      const who = this.subject(slot, ins, step.of);
      if (who < 0 || (step.unlessSelf && self)) return at;
      const family = STEP_FAMILY[step.del];
      this.cacheDelete(cacheKey(family, who), family, who, at);
      return at;
    }
    if ('redis' in step) return this.redisOp(at, step.redis, false);
    // A job: queued, run by a worker (its overhead), counted under its kind.
    if (step.unlessSelf && self) return at;
    this.w(W_JOBS);
    this.workCount[WORK_ROW_NOTIFY]!++;
    this.part(this.topo.workers, at, this.cfg.capacity.jobOverheadMs);
    return at;
  }

  /** A look-aside read of one key: the node's LRU, on a miss one query on the shard of `account` and a set. */
  private lookAsideOne(slot: number, family: KeyFamily, id: number, account: number, kind: number, at: number): number {
    const key = cacheKey(family, id);
    const c = this.cfg.capacity;
    const owner = this.topo.nodeOf(family, id);
    const node = owner && this.topo.serving(owner, key);
    this.w(W_LOOKUPS);
    let end = at;
    if (node) {
      if (node !== owner) owner!.toGutter++;
      node.stepLookups++;
      if (!node.alive) node.dead++;
      else {
        end = this.part(node.server, at, c.memcachedOpUs / 1000);
        if (end < 0) end = at;
        if (node.lru.get(key, at)) {
          node.hits++;
          node.stepHits++;
          return end;
        }
        node.misses++;
      }
    }
    this.w(W_MISSES);
    // Another request's fill of the key is in flight: with leases this one waits for it (the live
    // getOrFill joins the fill, it does not read); without, it reads too — a herd read.
    const leases = this.topo.leases;
    if (leases && node?.alive && leases.request(key, end) === 'wait') {
      this.herdCheck(node, key, end, false, true);
      this.w(W_MISSES, -1);
      this.w(W_WAITS);
      const inflight = this.inFlightFills.get(key);
      return inflight !== undefined && inflight > end ? inflight : end + c.leaseRetryMs;
    }
    this.herdCheck(node, key, end, true, true);
    const read = this.dbQuery(this.pop.shard[account]!, account, end, c.queryMs.pkRead, false, this.rqActor[slot]!, kind);
    if (read < 0) return -1;
    if (node?.alive) node.fills++;
    this.inFlightFills.set(key, read);
    this.fills++;
    this.stepFills++;
    // Set when the read returns, on the node serving the key then (setRead).
    this.rqKeys[slot * KEYS_PER_SLOT] = key;
    this.rqNKeys[slot] = 1;
    return read;
  }

  /** The user objects of the page's media owners: one multiget, misses read per logical shard, then set. */
  private ownersLookup(slot: number, at: number): number {
    const base = slot * KEYS_PER_SLOT;
    const c = this.cfg.capacity;
    const owners = this.ownerScratch;
    let n = 0;
    // Each media's owner, its latest likers and commenters (the live usersOfMedia), each once.
    for (let i = 0; i < this.rqPageN[slot]!; i++) {
      const m = keyId(this.rqPage[base + i]!);
      n = addOnce(owners, n, this.mediaOwner(m));
      const r = this.reactions.get(m);
      if (r) for (const u of r) n = addOnce(owners, n, u);
    }
    let misses = 0;
    const missed = this.missScratch;
    const missNode = this.missNodeScratch;
    const leases = this.topo.leases;
    let waits = 0;
    let waitUntil = at;
    for (let i = 0; i < n; i++) {
      const key = cacheKey(KEY.user, owners[i]!);
      const node = this.batchLookup(key, at);
      if (this.batchHit) continue;
      // With leases, a key another request is filling is waited for, not read (counted as a wait).
      if (leases && node?.alive && leases.request(key, at) === 'wait') {
        this.herdCheck(node, key, at, false, true);
        waits++;
        const inflight = this.inFlightFills.get(key);
        waitUntil = Math.max(waitUntil, inflight !== undefined && inflight > at ? inflight : at + c.leaseRetryMs);
        continue;
      }
      this.herdCheck(node, key, at, true, true);
      missNode[misses] = node?.alive ? node.index : -1;
      missed[misses++] = owners[i]!;
    }
    const end = Math.max(this.sendBatch(at), waitUntil);
    this.w(W_LOOKUPS, n);
    this.w(W_MISSES, misses);
    this.w(W_WAITS, waits);
    if (misses === 0) return end;
    // One query per logical shard of the missed owners.
    for (let i = 0; i < misses; i++) this.groupRead(missed[i]!, STEP_KIND.user);
    const read = this.readGroups(end, this.rqActor[slot]!);
    if (read < 0) return -1;
    // Set when the reads return, on the node serving each key then (setRead).
    let pending = 0;
    for (let i = 0; i < misses; i++) {
      if (missNode[i]! >= 0) this.topo.caches[missNode[i]!]!.fills++;
      const key = cacheKey(KEY.user, missed[i]!);
      this.inFlightFills.set(key, read);
      if (pending < KEYS_PER_SLOT) this.rqKeys[base + pending++] = key;
    }
    this.rqNKeys[slot] = pending;
    this.fills += misses;
    this.stepFills += misses;
    return read;
  }

  private ownerScratch = new Float64Array(KEYS_PER_SLOT * (1 + LIKERS_SHOWN + COMMENTS_SHOWN));
  private missScratch = new Float64Array(KEYS_PER_SLOT * (1 + LIKERS_SHOWN + COMMENTS_SHOWN));
  private missNodeScratch = new Int32Array(KEYS_PER_SLOT * (1 + LIKERS_SHOWN + COMMENTS_SHOWN));
  /**
   * Per media liked or commented on during the run: the accounts its object lists (the latest
   * LIKERS_SHOWN likers, then the latest COMMENTS_SHOWN commenters), whose user objects every list
   * that shows it looks up.
   */
  private readonly reactions = new Map<number, number[]>();
  private readonly reactionCounts = new Map<number, number>();

  private noteReaction(media: number, account: number, like: boolean): void {
    let list = this.reactions.get(media);
    if (!list) this.reactions.set(media, (list = []));
    const packed = this.reactionCounts.get(media) ?? 0;
    let likers = packed & 15;
    let commenters = packed >> 4;
    if (like) {
      list.splice(0, 0, account);
      if (likers === LIKERS_SHOWN) list.splice(LIKERS_SHOWN, 1);
      else likers++;
    } else {
      list.splice(likers, 0, account);
      if (commenters === COMMENTS_SHOWN) list.pop();
      else commenters++;
    }
    this.reactionCounts.set(media, likers | (commenters << 4));
  }

  /** Adds n to a figure of the work being counted (the current request's op, or a job's). */
  private w(field: number, n = 1): void {
    if (this.wRow >= 0) this.work[this.wRow + field] = this.work[this.wRow + field]! + n;
    if (field === W_MISSES && this.wSlot >= 0) this.rqMissed[this.wSlot] = this.rqMissed[this.wSlot]! + n;
  }

  /**
   * A visit of `ms` to part `r` (its end, or −1 refused), on the live server's one thread as well, when
   * capacity.sharedThread says the parts run there (a calibrated profile: the live server's caches,
   * SQLite databases, Redis client and jobs all run in its event loop): the visit then ends when the
   * thread has done it, queued behind everything else the thread does. Under overload the thread's
   * queue may refuse what the part admitted: a refused query fails, a refused lookup is taken as done
   * at once, and refused sets, deletes and job overheads are not done; the part's own figures still
   * count the visit.
   */
  private part(r: Resource, at: number, ms: number): number {
    const e = r.admit(at, ms);
    if (!this.sharedThread || e < 0) return e;
    return this.topo.app.admit(at, ms);
  }

  /** `ms` on the shared thread, then `waitMs` off it (a query's own time, then SLOW_DB_MS's sleep); −1 when the thread's queue refuses it. */
  private afterThread(now: number, ms: number, waitMs: number): number {
    const e = this.topo.app.admit(now, ms);
    return e < 0 ? -1 : e + waitMs;
  }

  /** Admits a visit; counts refusals; returns its end or −1. */
  private visit(r: { admit(now: number, ms: number): number }, now: number, ms: number): number {
    return r.admit(now, ms);
  }

  private fail(slot: number, now: number): void {
    this.rqStatus[slot] = ST_UNAVAILABLE;
    this.rqStage[slot] = 99;
    this.sim.at(now, this.H_STAGE, slot);
  }

  private finishRequest(slot: number, ins: OpInstr, now: number): void {
    const status = this.rqStatus[slot]!;
    const op = OP_INDEX[ins.op];
    this.workCount[op]!++;
    if (status !== ST_OK) this.workFailed[op]!++;
    this.requests++;
    this.stepRequests++;
    this.rec.request(this.itScenario[slot]!, ins, status, now - this.rqStart[slot]!, now);
    // The live function ends the iteration when a signup fails or a media read returns nothing.
    if ((ins.op === 'signup' && status !== ST_OK) || (ins.op === 'user_media' && (status !== ST_OK || this.itMedia[slot]! < 0))) {
      this.itPc[slot] = 1 << 30;
      this.itRepeat[slot] = 0;
    }
    if (this.itRepeat[slot]! <= 0) {
      this.itRepeat[slot] = -1;
      this.itPc[slot]!++;
    }
    this.nextOp(slot);
  }

  /** The next stage of the request in `slot` (or the end of a sleep). */
  private stage(slot: number): void {
    const now = this.sim.now;
    if (this.rqStage[slot] === -1) return this.nextOp(slot);
    const ins = this.currentOp(slot);
    this.wRow = OP_INDEX[ins.op] * WF;
    this.wSlot = slot;
    const st = this.rqStage[slot]!;
    if (st === 99 || st === STAGE_ANSWER) return this.finishRequest(slot, ins, now);
    if (st === STAGE_HEAD || st === STAGE_TAIL) {
      this.setRead(slot, now);
      return this.runPhase(slot, ins, st, now);
    }
    const end = this.opStage(slot, ins, st, now);
    if (end === -2) {
      // The main stages are done: the recipe's tail (owners' objects, counters, activity …), then the answer.
      if (ins.op === 'admin' || this.rqStatus[slot] !== ST_OK) return this.finishRequest(slot, ins, now);
      this.rqStep[slot] = 0;
      return this.runPhase(slot, ins, STAGE_TAIL, now);
    }
    if (end < 0) {
      this.rqStatus[slot] = ST_UNAVAILABLE;
      return this.finishRequest(slot, ins, now);
    }
    this.rqStage[slot]!++;
    this.sim.at(end, this.H_STAGE, slot);
  }

  // ------------------------------------------------------------------------------- the routes

  /**
   * One stage of an op at `now`; returns when it ends (the next stage runs then), −2 when the
   * request is answered now, −1 when a budget refused it (503, as the live service answers).
   */
  private opStage(slot: number, ins: OpInstr, stage: number, now: number): number {
    const c = this.cfg.capacity;
    const q = c.queryMs;
    switch (ins.op) {
      case 'feed':
        if (stage === 1) return this.redisOp(now, 1, true);
        if (stage === 2) return this.feedMultiget(slot, ins, now);
        if (stage === 3) return this.fillMisses(slot, now);
        // Then, while keys wait on other clients' leases: set what was read, look again.
        this.completeFills(slot, now);
        return this.retryWaiting(slot, now);
      case 'user_media': {
        const owner = this.rqTarget[slot]!;
        // The page's ids from the owner's shard (a range scan, not cached), then its media by multiget.
        if (stage === 1) return this.dbQuery(this.pop.shard[owner]!, owner, now, q.rangeRead, false, this.rqActor[slot]!, K_USER_MEDIA);
        if (stage === 2) {
          this.rqNKeys[slot] = 0;
          const m = this.pop.lastMedia[owner]!;
          // The newest `page` of the owner's photos: a post made during the event, then theirs from before, newest first.
          const pop = this.pop;
          if (m >= pop.firstUploadId) this.pushKey(slot, cacheKey(KEY.media, m));
          for (let i = pop.mediaCount(owner) - 1; i >= 0 && this.rqNKeys[slot]! < Math.min(ins.page, KEYS_PER_SLOT); i--) this.pushKey(slot, cacheKey(KEY.media, owner * pop.slot + i));
          this.itMedia[slot] = m;
          this.itMediaOwner[slot] = owner;
          this.notePage(slot);
          return this.multiget(slot, now);
        }
        return this.lookAside(slot, now, stage - 1, owner, q.pkRead, K_MEDIA);
      }
      case 'media': {
        const m = this.itMedia[slot]!;
        const owner = this.itMediaOwner[slot]!;
        if (stage === 1) {
          this.rqNKeys[slot] = 0;
          this.pushKey(slot, cacheKey(KEY.media, m));
          this.notePage(slot);
          return this.multiget(slot, now);
        }
        return this.lookAside(slot, now, stage, owner, q.pkRead, K_MEDIA, cacheKey(KEY.media, m));
      }
      case 'like':
      case 'comment': {
        const m = this.itMedia[slot]!;
        const owner = this.itMediaOwner[slot]!;
        if (stage === 1) return this.dbWrite(this.pop.shard[owner]!, owner, now, this.rqActor[slot]!, ins.op === 'like' ? K_LIKE : K_COMMENT, cacheKey(KEY.media, m));
        if (stage === 2) {
          // Delete on write: the media object (its counts changed; it lists its latest likers and commenters).
          this.cacheDelete(cacheKey(KEY.media, m), KEY.media, m, now);
          this.noteReaction(m, this.rqActor[slot]!, ins.op === 'like');
          return -2;
        }
        return -2;
      }
      case 'follow': {
        const follower = this.rqActor[slot]!;
        const followee = this.rqTarget[slot]!;
        if (stage === 1) {
          // Already following (an account the viewer's follows include, ∝ how many they follow): nothing is written.
          this.rqAlready[slot] = follower < this.pop.base && this.rng.next() < this.pop.follows(follower) / this.pop.base ? 1 : 0;
          if (this.rqAlready[slot]) return now;
          // The edge on both shards (who I follow, who follows them), in parallel.
          const a = this.dbWrite(this.pop.shard[follower]!, follower, now, follower, K_FOLLOW);
          const b = this.dbWrite(this.pop.shard[followee]!, followee, now, follower, K_FOLLOW);
          if (a < 0 || b < 0) return -1;
          this.pop.follow(follower, followee);
          return Math.max(a, b);
        }
        // Then the counts, their u: deletes, activity and the answer's reads: the recipe's tail.
        return -2;
      }
      case 'signup': {
        if (stage === 1) {
          // The username's claim (on the shard of its hash), then the account and its token on the new account's shard.
          const n = this.pop.size;
          const claim = this.dbWrite(shardForKey(`u${n}`, this.cfg.shards.logical), n, now, n, K_SIGNUP);
          if (claim < 0) return -1;
          return claim;
        }
        if (stage === 2) {
          const id = this.pop.signup();
          this.itNew[slot] = id;
          this.rqActor[slot] = id;
          return this.dbWrite(this.pop.shard[id]!, id, now, id, K_SIGNUP);
        }
        return -2;
      }
      case 'upload': {
        const owner = this.rqActor[slot]!;
        if (stage === 1) {
          this.w(W_JOBS); // the resize job: the request waits for it
          this.workCount[WORK_ROW_RESIZE]!++;
          return this.visit(this.topo.workers, now, c.jobOverheadMs + c.resizeMs);
        }
        if (stage === 2) return now + c.blobPutMs; // S3: elastic, a delay
        if (stage === 3) return this.dbWrite(this.pop.shard[owner]!, owner, now, owner, K_UPLOAD);
        if (stage === 4) {
          const media = this.pop.post(owner);
          this.itMedia[slot] = media;
          this.itMediaOwner[slot] = owner;
          this.cacheDelete(cacheKey(KEY.recent, owner), KEY.recent, owner, now);
          const own = this.redisOp(now, 1, false); // the owner's own feed
          this.w(W_DELIVERIES);
          this.w(W_JOBS); // the fanout job
          this.startFanout(owner, now);
          return own < 0 ? -1 : own;
        }
        return -2;
      }
      case 'admin':
        return -2;
    }
  }

  /**
   * Stages 2 on of a one-query read (a profile's page of media, one photo) after its multiget:
   * the misses are read from the owner's shard in one query and set when it returns. With leases,
   * a missed key whose token another client holds is not read by this one (it may not set it);
   * when every miss is held, the client waits leaseRetryMs and looks again (lookAgain: it may be
   * told to wait again), then reads what still misses. Returns as opStage does.
   */
  private lookAside(slot: number, now: number, stage: number, owner: number, ms: number, kind: number, key?: number): number {
    const base = slot * KEYS_PER_SLOT;
    if (stage === 2) {
      const n = this.rqNMiss[slot]!;
      if (n === 0) return -2;
      const leases = this.topo.leases;
      if (leases) {
        let fills = 0;
        let waiting = 0;
        for (let i = 0; i < n; i++) {
          const k = this.rqKeys[base + i]!;
          const node = this.keyNode(slot, i);
          if (node?.alive && leases.request(k, now) === 'wait') {
            this.herdCheck(node, k, now, false, true);
            this.rqNode[base + KEYS_PER_SLOT - 1 - waiting] = node.index;
            this.rqKeys[base + KEYS_PER_SLOT - 1 - waiting++] = k;
            continue;
          }
          this.rqNode[base + fills] = node ? node.index : -1;
          this.rqKeys[base + fills++] = k;
        }
        if (fills === 0) {
          this.rqNMiss[slot] = waiting;
          this.rqNFill[slot] = -1; // waiting on another client's lease
          return now + this.cfg.capacity.leaseRetryMs;
        }
        this.rqNMiss[slot] = fills;
      }
      return this.readAndFill(slot, now, owner, ms, kind, key);
    }
    if (this.rqNFill[slot] === -1) {
      // The wait is over: what was filled meanwhile hits; a key another client still leases is waited on again; the rest is read.
      const waiting = this.lookAgain(slot, now);
      if (this.rqNMiss[slot]! > 0) return this.readAndFill(slot, now, owner, ms, kind, key);
      if (waiting === 0) {
        this.rqNFill[slot] = 0;
        return -2;
      }
      this.rqNMiss[slot] = waiting;
      return now + this.cfg.capacity.leaseRetryMs;
    }
    this.completeFills(slot, now);
    return -2;
  }

  private readAndFill(slot: number, now: number, owner: number, ms: number, kind: number, key?: number): number {
    const end = this.dbQuery(this.pop.shard[owner]!, owner, now, ms, false, this.rqActor[slot]!, kind, key);
    if (end < 0) return -1;
    this.startFills(slot, now, end);
    return end;
  }

  private pushKey(slot: number, key: number): void {
    const n = this.rqNKeys[slot]!;
    if (n >= KEYS_PER_SLOT) return;
    this.rqKeys[slot * KEYS_PER_SLOT + n] = key;
    this.rqNKeys[slot] = n + 1;
  }

  private redisOp(now: number, commands: number, read: boolean, perCommandUs = this.cfg.capacity.redisOpUs): number {
    const r = read && this.topo.redisReplica ? this.topo.redisReplica : this.topo.redis;
    this.redisOps += commands;
    this.stepRedis += commands;
    this.w(W_REDIS, commands);
    const ms = (commands * perCommandUs) / 1000;
    return this.part(r, now, ms);
  }

  /**
   * A feed page: the newest `page` entries of the viewer's list, multigot; pulls for hybrid. The
   * list holds the photos of the accounts the viewer follows (follows(viewer) of them, drawn as the
   * live graph draws followees: ∝ followers) — their posts from before the event, in no particular
   * order of time, and a post made during it first. A viewer whose list is shorter gets all of it.
   */
  private feedMultiget(slot: number, ins: OpInstr, now: number): number {
    this.rqNKeys[slot] = 0;
    const page = Math.min(ins.page, KEYS_PER_SLOT - 8);
    const viewer = this.rqActor[slot]!;
    const pop = this.pop;
    const src = this.feedSources;
    const want = Math.min(MAX_FEED_SOURCES - 1, viewer >= 0 ? pop.follows(viewer) : 0);
    let k = 0;
    // The viewer's own photos are on their list too (as the live seeding and the post write it).
    if (viewer >= 0) {
      src[k++] = viewer;
      if (pop.lastMedia[viewer]! >= pop.firstUploadId) this.pushKey(slot, cacheKey(KEY.media, pop.lastMedia[viewer]!));
    }
    const sources = k + want;
    for (let tries = 0; k < sources && tries < 2 * want + 8; tries++) {
      const f = pop.followee(this.rng);
      if (f === viewer) continue;
      let j = 0;
      while (j < k && src[j] !== f) j++;
      if (j < k) continue;
      src[k] = f;
      // A post made during the event is the newest entry: it goes on the page first.
      if (pop.lastMedia[f]! >= pop.firstUploadId && this.rqNKeys[slot]! < page) this.pushKey(slot, cacheKey(KEY.media, pop.lastMedia[f]!));
      k++;
    }
    // The newest `room` of the photos from before the event, by their dates (each account's newest first).
    const room = page - this.rqNKeys[slot]!;
    const dates = this.entryDates;
    const keys = this.entryKeys;
    if (this.ownDates.length < pop.slot) this.ownDates = new Float64Array(pop.slot);
    const own = this.ownDates;
    let e = 0;
    for (let j = 0; j < k; j++) {
      const f = src[j]!;
      const c = pop.mediaDates(f, own);
      // The seeding puts at most FEED_POSTS_PER_AUTHOR of each followed account's photos on a list.
      const take = Math.min(room, j === 0 ? c : FEED_POSTS_PER_AUTHOR);
      for (let i = c - 1; i >= Math.max(0, c - take) && e < dates.length; i--) {
        dates[e] = own[i]!;
        keys[e++] = cacheKey(KEY.media, f * pop.slot + i);
      }
    }
    if (e <= room) for (let i = 0; i < e; i++) this.pushKey(slot, keys[i]!);
    else {
      // The entry with the latest date first: each date (32 bits) packed above its index, one numeric sort.
      const packed = dates.subarray(0, e);
      for (let i = 0; i < e; i++) packed[i] = Math.floor(packed[i]! * 4294967296) * ENTRY_SLOTS + i;
      packed.sort();
      for (let n = 1; n <= room; n++) this.pushKey(slot, keys[packed[e - n]! % ENTRY_SLOTS]!);
    }
    // Pull (or hybrid): the recent ids of followed accounts that are not pushed, read at read time.
    const fan = this.cfg.feed.fanout;
    if (fan !== 'push') {
      for (let k = 0; k < this.pop.celebrities.length; k++) {
        const c = this.pop.celebrities[k]!;
        if (fan === 'hybrid' && this.pop.followers[c]! < this.cfg.feed.hybridThreshold) continue;
        if (this.rng.next() < this.pop.followers[c]! / this.pop.size) this.pushKey(slot, cacheKey(KEY.recent, c));
      }
    }
    this.notePage(slot);
    return this.multiget(slot, now);
  }

  /**
   * One key of a multiget at `now`: looked up on the node serving it (a down owner's keys go to the
   * gutter pool where there is one, counted there, once), counted, and its node's visit queued for
   * sendBatch. Returns that node (null: an empty ring); whether it hit is left in batchHit.
   */
  private batchLookup(key: number, now: number): CacheNode | null {
    const owner = this.topo.nodeOf(keyFamily(key), keyId(key));
    const node = owner && this.topo.serving(owner, key);
    this.batchHit = false;
    if (!node) return null;
    if (node !== owner) owner!.toGutter++;
    node.stepLookups++;
    if (!node.alive) {
      node.dead++;
      return node;
    }
    if (this.perNodeScratch[node.index]!++ === 0) this.touchedScratch[this.batchNodes++] = node.index;
    if (node.lru.get(key, now)) {
      node.hits++;
      node.stepHits++;
      this.batchHit = true;
    } else node.misses++;
    return node;
  }

  /**
   * The batch's visits: one request per node its keys touched, in parallel; returns when the last
   * answers. A node past its queue budget answers nothing: the client treats it as misses (already
   * counted as lookups).
   */
  private sendBatch(now: number): number {
    const c = this.cfg.capacity;
    const perNode = this.perNodeScratch;
    let end = now;
    for (let t = 0; t < this.batchNodes; t++) {
      const k = this.touchedScratch[t]!;
      const ms = (c.memcachedOpUs + c.memcachedKeyUs * perNode[k]!) / 1000;
      const e = this.part(this.topo.caches[k]!.server, now, ms);
      perNode[k] = 0;
      if (e > end) end = e;
    }
    this.batchNodes = 0;
    return end;
  }

  private batchHit = false;
  private batchNodes = 0;

  /** Adds a read of `account`'s row to the reads grouped per logical shard (one query per shard, as the live code groups them). */
  private groupRead(account: number, kind: number): void {
    const shard = this.pop.shard[account]!;
    const shards = this.shardScratch;
    let j = 0;
    while (j < this.nGroups && shards[j] !== shard) j++;
    if (j === this.nGroups) {
      shards[j] = shard;
      this.shardCountScratch[j] = 0;
      this.nGroups++;
      this.countShard(shard, account, kind);
    }
    this.shardCountScratch[j]!++;
  }

  /** The grouped reads, from `at` in parallel (a query of k rows costs pkRead × (1 + 0.2 (k − 1))); returns when the last returns, −1 if one is refused. */
  private readGroups(at: number, actor: number): number {
    const pk = this.cfg.capacity.queryMs.pkRead;
    const n = this.nGroups;
    this.nGroups = 0;
    let end = at;
    for (let j = 0; j < n; j++) {
      const e = this.readOn(this.topo.serverOfShard(this.shardScratch[j]!), at, pk * (1 + 0.2 * (this.shardCountScratch[j]! - 1)), actor);
      if (e < 0) return -1;
      if (e > end) end = e;
    }
    return end;
  }

  private nGroups = 0;

  /** Gets the slot's keys, grouped per node (one request per node, in parallel); leaves the misses in rqKeys. */
  private multiget(slot: number, now: number): number {
    const n = this.rqNKeys[slot]!;
    const base = slot * KEYS_PER_SLOT;
    let misses = 0;
    this.rqRing[slot] = this.topo.ringVersion;
    for (let i = 0; i < n; i++) {
      const key = this.rqKeys[base + i]!;
      const node = this.batchLookup(key, now);
      if (!this.batchHit) {
        this.rqNode[base + misses] = node ? node.index : -1;
        this.rqKeys[base + misses++] = key;
      }
    }
    const end = this.sendBatch(now);
    this.rqNMiss[slot] = misses;
    this.rqNKeys[slot] = misses;
    this.w(W_LOOKUPS, n);
    this.w(W_MISSES, misses);
    return end;
  }

  /** The cache node of the slot's i-th key: the one its lookup found, unless the ring changed since. */
  private keyNode(slot: number, i: number): CacheNode | null {
    const j = slot * KEYS_PER_SLOT + i;
    const k = this.rqNode[j]!;
    if (this.rqRing[slot] === this.topo.ringVersion && k >= 0) return this.topo.caches[k]!;
    const key = this.rqKeys[j]!;
    const owner = this.topo.nodeOf(keyFamily(key), keyId(key));
    return owner && this.topo.serving(owner, key);
  }

  private feedSources = new Float64Array(MAX_FEED_SOURCES);
  private entryDates = new Float64Array(ENTRY_SLOTS);
  private entryKeys = new Float64Array(ENTRY_SLOTS);
  private ownDates = new Float64Array(0);
  private perNodeScratch = new Int32Array(512);
  private touchedScratch = new Int32Array(512);

  /**
   * Misses go to their shards: grouped per physical server, one query each. With leases, a key whose
   * lease another client holds waits (it is looked up again after leaseRetryMs). A miss while a fill
   * of the same key is in flight is a herd event. Keys being filled stay at the front of the slot's
   * keys (rqNFill), waiting keys at its back (rqNMiss); the values are set when the reads return.
   */
  private fillMisses(slot: number, now: number): number {
    const n = this.rqNMiss[slot]!;
    if (n === 0) return -2;
    const base = slot * KEYS_PER_SLOT;
    const leases = this.topo.leases;
    let waiting = 0;
    let fills = 0;
    // Misses read per logical shard, one query each (the live getMediaMany groups by shard).
    for (let i = 0; i < n; i++) {
      const key = this.rqKeys[base + i]!;
      const family = keyFamily(key);
      const id = keyId(key);
      const node = this.keyNode(slot, i);
      if (leases && node?.alive && leases.request(key, now) === 'wait') {
        this.herdCheck(node, key, now, false, true);
        this.w(W_MISSES, -1);
        this.w(W_WAITS);
        this.rqNode[base + KEYS_PER_SLOT - 1 - waiting] = node.index;
        this.rqKeys[base + KEYS_PER_SLOT - 1 - waiting++] = key;
        continue;
      }
      this.herdCheck(node, key, now, true, true);
      this.groupRead(family === KEY.media ? this.mediaOwner(id) : id, family === KEY.media ? K_MEDIA : K_RECENT);
      if (node) node.fills++;
      this.rqNode[base + fills] = node ? node.index : -1;
      this.rqKeys[base + fills++] = key;
    }
    this.fills += fills;
    this.stepFills += fills;
    let end = this.readGroups(now, this.rqActor[slot]!);
    if (end < 0) return -1;
    for (let i = 0; i < fills; i++) this.inFlightFills.set(this.rqKeys[base + i]!, end);
    this.rqNFill[slot] = fills;
    this.rqNMiss[slot] = waiting;
    if (waiting > 0) end = Math.max(end, now + this.cfg.capacity.leaseRetryMs);
    return end;
  }

  private shardScratch = new Int32Array(KEYS_PER_SLOT * (1 + LIKERS_SHOWN + COMMENTS_SHOWN));
  private shardCountScratch = new Int32Array(KEYS_PER_SLOT * (1 + LIKERS_SHOWN + COMMENTS_SHOWN));

  /** Reads of the slot's missed keys (rqNMiss at its front) went out; their values are set when they return. */
  private startFills(slot: number, now: number, end: number): void {
    const n = this.rqNMiss[slot]!;
    const base = slot * KEYS_PER_SLOT;
    for (let i = 0; i < n; i++) {
      const key = this.rqKeys[base + i]!;
      const node = this.keyNode(slot, i);
      this.herdCheck(node, key, now, true, this.rqWaits[slot] === 0);
      if (node) node.fills++;
      this.inFlightFills.set(key, end);
    }
    this.fills += n;
    this.stepFills += n;
    this.rqNFill[slot] = n;
    this.rqNMiss[slot] = 0;
  }

  /** The reads returned: the client sets what it read (look-aside), and gives back its lease. */
  private completeFills(slot: number, now: number): void {
    const n = this.rqNFill[slot]!;
    const base = slot * KEYS_PER_SLOT;
    for (let i = 0; i < n; i++) {
      const key = this.rqKeys[base + i]!;
      const family = keyFamily(key);
      const node = this.keyNode(slot, i);
      if (this.inFlightFills.get(key) === now) this.inFlightFills.delete(key);
      if (!node?.alive) continue;
      if (this.topo.leases && !this.topo.leases.filled(key, now)) continue; // deleted meanwhile: not stored
      node.lru.set(key, this.sizeOf(family), node.gutter ? now + this.cfg.cache.gutterTtlMs : Infinity);
      this.w(W_SETS);
      if (node.lru.bytes > node.peakBytes) node.peakBytes = node.lru.bytes;
      this.part(node.server, now, this.cfg.capacity.memcachedOpUs / 1000);
    }
    this.rqNFill[slot] = 0;
  }

  private sizeOf(family: number): number {
    const b = this.cfg.capacity.objectBytes;
    return family === KEY.media ? b.media : family === KEY.user ? b.user : family === KEY.token ? b.token : family === KEY.recent ? b.recent : b.blocks;
  }

  /**
   * After a lease wait: keys filled meanwhile hit; a key still missing asks for its lease again
   * (the holder's fill may have been deleted by a write since) and waits again while another
   * client holds it, up to MAX_LEASE_WAITS; the rest are read from their shards. Leaves the keys
   * read at the front of the slot (rqNMiss of them) and returns how many still wait, at its back.
   */
  private lookAgain(slot: number, now: number): number {
    const n = this.rqNMiss[slot]!;
    const base = slot * KEYS_PER_SLOT;
    const keys = this.retryScratch;
    for (let i = 0; i < n; i++) keys[i] = this.rqKeys[base + KEYS_PER_SLOT - 1 - i]!;
    const leases = this.topo.leases;
    const mayWait = leases !== null && ++this.rqWaits[slot]! < MAX_LEASE_WAITS;
    let reads = 0;
    let waiting = 0;
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      const owner = this.topo.nodeOf(keyFamily(key), keyId(key));
      const node = owner && this.topo.serving(owner, key);
      if (node && node !== owner) owner!.toGutter++;
      if (node) node.stepLookups++;
      this.w(W_LOOKUPS);
      if (node?.alive && node.lru.get(key, now)) {
        node.hits++;
        node.stepHits++;
        continue;
      }
      if (node?.alive) node.misses++;
      if (mayWait && node?.alive && leases.request(key, now) === 'wait') {
        this.w(W_WAITS);
        this.rqNode[base + KEYS_PER_SLOT - 1 - waiting] = node.index;
        this.rqKeys[base + KEYS_PER_SLOT - 1 - waiting++] = key;
        continue;
      }
      this.w(W_MISSES);
      this.rqNode[base + reads] = node ? node.index : -1;
      this.rqKeys[base + reads++] = key;
    }
    this.rqRing[slot] = this.topo.ringVersion;
    this.rqNMiss[slot] = reads;
    return waiting;
  }

  private retryScratch = new Float64Array(KEYS_PER_SLOT);

  /**
   * A miss on a key whose fill is already in flight is a herd event (counted at a request's first
   * look, as the live cache counts it); when this client reads the shard too, a herd fill — the
   * herd's load on the shards, which leases turn into waits.
   */
  private herdCheck(node: CacheNode | null, key: number, now: number, reads: boolean, firstLook: boolean): void {
    const inflight = this.inFlightFills.get(key);
    if (inflight === undefined || inflight <= now) return;
    if (firstLook) {
      this.herdEvents++;
      this.stepHerd++;
      if (node) node.herd++;
    }
    if (reads) {
      this.herdFills++;
      this.stepHerdFills++;
      if (node) node.herdFills++;
    }
  }

  /** A feed read's keys that waited on leases: look again, read what still misses (a query per key), wait again for the rest. */
  private retryWaiting(slot: number, now: number): number {
    if (this.rqNMiss[slot] === 0) return -2;
    const waiting = this.lookAgain(slot, now);
    const reads = this.rqNMiss[slot]!;
    const base = slot * KEYS_PER_SLOT;
    const q = this.cfg.capacity.queryMs;
    let end = now;
    for (let i = 0; i < reads; i++) {
      const key = this.rqKeys[base + i]!;
      const family = keyFamily(key);
      const id = keyId(key);
      const owner = family === KEY.media ? this.mediaOwner(id) : id;
      const shard = this.pop.shard[owner]!;
      this.countShard(shard, owner, family === KEY.media ? K_MEDIA : K_RECENT);
      const e = this.readOn(this.topo.serverOfShard(shard), now, q.pkRead, this.rqActor[slot]!);
      if (e < 0) return -1;
      if (e > end) end = e;
    }
    this.startFills(slot, now, end);
    this.rqNMiss[slot] = waiting;
    if (waiting > 0) end = Math.max(end, now + this.cfg.capacity.leaseRetryMs);
    return reads === 0 && waiting === 0 ? -2 : end;
  }

  private mediaOwner(mediaId: number): number {
    // Base photos by arithmetic; uploads during the run are remembered in order.
    const first = this.pop.firstUploadId;
    if (mediaId < first) return this.pop.ownerOfBase(mediaId);
    return this.uploadOwner[mediaId - first]!;
  }

  private uploadOwner = new Float64Array(1024);

  private cacheDelete(key: number, family: KeyFamily, id: number, now: number): void {
    // The lease is invalidated even when the owner is down (a gutter may hold the key's token), as the live cache does.
    this.topo.leases?.invalidate(key);
    const node = this.topo.nodeOf(family, id);
    if (!node || !node.alive) return;
    this.w(W_DELETES);
    node.lru.delete(key);
    this.part(node.server, now, this.cfg.capacity.memcachedOpUs / 1000);
  }

  /** A read on a shard's server: the replica or the primary, by the read policy. */
  private readOn(server: DbServer, now: number, ms: number, actor: number, key?: number): number {
    const policy = this.cfg.database.readPolicy;
    let useReplica = server.replica !== null && policy !== 'primary';
    if (useReplica && policy === 'read-your-writes' && actor >= 0) {
      const w = this.recentWrites.get(-1 - actor);
      if (w !== undefined && w > now) useReplica = false;
    }
    const r = useReplica ? server.replica! : server.primary;
    if (server.down && !useReplica) return -1;
    // database.serviceTimeMs is time the live topology adds to every query on a pooled connection.
    this.w(W_DB_READS);
    const svc = this.serviceTimeMs;
    const r0 = r.admit(now, ms + svc);
    // On the shared thread the query's own time is the thread's; database.serviceTimeMs is a wait (live: a sleep on the connection).
    const e = this.sharedThread && r0 >= 0 ? this.afterThread(now, ms, svc) : r0;
    if (e < 0) return -1;
    server.ops++;
    server.stepOps++;
    server.reads++;
    if (useReplica && key !== undefined) {
      const w = this.recentWrites.get(key);
      if (w !== undefined && w > now) {
        server.staleReads++;
        this.staleReads++;
        this.stepStale++;
      }
    }
    return e;
  }

  private dbQuery(shard: number, owner: number, now: number, ms: number, write: boolean, actor: number, kind: number, key?: number): number {
    const server = this.topo.serverOfShard(shard);
    this.countShard(shard, owner, kind);
    if (write) return this.dbWriteOn(server, now, ms, actor, key);
    return this.readOn(server, now, ms, actor, key);
  }

  private dbWrite(shard: number, owner: number, now: number, actor: number, kind: number, key?: number): number {
    return this.dbQuery(shard, owner, now, this.cfg.capacity.queryMs.write, true, actor, kind, key);
  }

  /** A write on a primary; its replica applies it later (in order, at its apply rate): that delay is replica lag. */
  private dbWriteOn(server: DbServer, now: number, ms: number, actor: number, key?: number): number {
    if (server.down) return -1;
    this.w(W_DB_WRITES);
    const svc = this.serviceTimeMs;
    const p0 = server.primary.admit(now, ms + svc);
    const e = this.sharedThread && p0 >= 0 ? this.afterThread(now, ms, svc) : p0;
    if (e < 0) return -1;
    server.ops++;
    server.stepOps++;
    server.writes++;
    if (server.apply) {
      const arrival = Math.max(e + this.topo.replicaDelayMs, server.lastArrival);
      server.lastArrival = arrival;
      const applied = server.apply.admit(arrival, 1000 / this.cfg.capacity.replicaApplyPerS);
      server.owed.push(applied);
      const lag = applied - e;
      if (lag > server.stepLagMax) server.stepLagMax = lag;
      if (lag > server.maxLagMs) server.maxLagMs = lag;
      if (key !== undefined) this.recentWrites.set(key, applied);
      if (actor >= 0) this.recentWrites.set(-1 - actor, applied);
    }
    return e;
  }

  private countShard(shard: number, owner: number, kind: number): void {
    this.shardOps[shard]!++;
    this.stepShardOps[shard]!++;
    // Misra–Gries with MG_K counters per shard: whose rows the queries touch.
    const b = shard * MG_K;
    let free = -1;
    for (let i = 0; i < MG_K; i++) {
      if (this.mgId[b + i] === owner) {
        this.mgCount[b + i]!++;
        free = -2;
        break;
      }
      if (free === -1 && this.mgCount[b + i] === 0) free = i;
    }
    if (free >= 0) {
      this.mgId[b + free] = owner;
      this.mgCount[b + free] = 1;
    } else if (free === -1) for (let i = 0; i < MG_K; i++) this.mgCount[b + i]!--;
    this.shardKindCounts[shard * SHARD_KINDS.length + kind]!++;
  }

  /** A logical shard's queries by kind, most first (kinds with none left out). */
  shardKinds(shard: number): Array<{ kind: string; count: number }> {
    const out: Array<{ kind: string; count: number }> = [];
    SHARD_KINDS.forEach((kind, k) => {
      const count = this.shardKindCounts[shard * SHARD_KINDS.length + k]!;
      if (count > 0) out.push({ kind, count });
    });
    return out.sort((a, b) => b.count - a.count);
  }

  /** The accounts whose rows loaded a shard most (Misra–Gries lower bounds). */
  shardUsers(shard: number): Array<{ id: number; count: number }> {
    const out: Array<{ id: number; count: number }> = [];
    for (let i = 0; i < MG_K; i++) if (this.mgId[shard * MG_K + i]! >= 0 && this.mgCount[shard * MG_K + i]! > 0) out.push({ id: this.mgId[shard * MG_K + i]!, count: this.mgCount[shard * MG_K + i]! });
    return out.sort((a, b) => b.count - a.count);
  }

  // ------------------------------------------------------------------------------- fan-out

  private startFanout(owner: number, now: number): void {
    const followers = this.pop.followers[owner]!;
    const media = this.pop.lastMedia[owner]!;
    const at = media - this.pop.firstUploadId;
    if (at >= this.uploadOwner.length) {
      const bigger = new Float64Array(this.uploadOwner.length * 2);
      bigger.set(this.uploadOwner);
      this.uploadOwner = bigger;
    }
    this.uploadOwner[at] = owner;
    this.fanout.posts++;
    const mode = this.cfg.feed.fanout;
    if (mode === 'pull' || (mode === 'hybrid' && followers >= this.cfg.feed.hybridThreshold)) {
      this.fanout.pulled++;
      return;
    }
    this.fanout.pushed++;
    if (followers === 0) {
      this.fanout.completed++;
      this.fanout.lags.push(0);
      this.fanout.sizes.push(0);
      return;
    }
    const c = this.cfg.capacity;
    const chunk = this.cfg.feed.chunkSize;
    const chunks = Math.ceil(followers / chunk);
    const post = this.postFree.length ? this.postFree.pop()! : this.postStart.length;
    this.postStart[post] = now;
    this.postChunksLeft[post] = chunks;
    this.postLast[post] = now;
    this.fanout.sizes.push(followers);
    // The fanout job's own work: a page of the follower list per chunk, a chunk job queued each.
    const row = this.wRow;
    const wSlot = this.wSlot;
    this.wRow = WORK_ROW_FANOUT * WF;
    this.wSlot = -1;
    this.workCount[WORK_ROW_FANOUT]!++;
    this.w(W_JOBS, chunks);
    // The fanout job reads the follower list (a page per chunk, on the owner's shard) and queues a chunk job each.
    const shard = this.pop.shard[owner]!;
    for (let k = 0; k < chunks; k++) {
      const size = Math.min(chunk, followers - k * chunk);
      const pageEnd = this.dbQuery(shard, owner, now, c.queryMs.rangeRead, false, -1, K_FANOUT);
      const start = pageEnd < 0 ? now : pageEnd;
      const held = this.topo.workers.admit(now, c.jobOverheadMs + (start - now));
      // On the shared thread the overhead is the thread's, and the chunk still waits for its page.
      const thread = this.sharedThread && held >= 0 ? this.topo.app.admit(now, c.jobOverheadMs) : held;
      const end = this.sharedThread && thread >= 0 ? Math.max(start, thread) : thread;
      if (end < 0) {
        this.fanout.failures++;
        this.postChunksLeft[post]!--;
        continue;
      }
      this.sim.at(end, this.H_CHUNK, post, size);
    }
    this.wRow = row;
    this.wSlot = wSlot;
    if (this.postChunksLeft[post] === 0) this.postFree.push(post);
  }

  /**
   * A chunk job's LPUSH per follower, pipelined to the feed Redis (the live push adds an LTRIM only
   * for a list past feed.maxLength, which lists of the model's size — the photos of the accounts
   * followed — do not reach at the presets), at capacity.redisPushUs a delivery (redisOpUs unset).
   */
  private chunkRedis(post: number, size: number): void {
    const now = this.sim.now;
    this.wRow = WORK_ROW_FANOUT_CHUNK * WF;
    this.wSlot = -1;
    this.workCount[WORK_ROW_FANOUT_CHUNK]!++;
    this.w(W_DELIVERIES, size);
    const end = this.redisOp(now, size, false, this.cfg.capacity.redisPushUs ?? this.cfg.capacity.redisOpUs);
    if (end < 0) {
      this.fanout.failures++;
      this.chunkDone(post);
      return;
    }
    const lag = end - this.postStart[post]!;
    this.fanout.deliveries += size;
    this.stepDeliveries += size;
    this.fanout.deliveryLag.push(lag);
    this.fanout.deliveryWeight.push(size);
    if (end > this.postLast[post]!) this.postLast[post] = end;
    this.sim.at(end, this.H_CHUNK_DONE, post);
  }

  private chunkDone(post: number): void {
    if (--this.postChunksLeft[post]! > 0) return;
    const lag = this.postLast[post]! - this.postStart[post]!;
    this.fanout.completed++;
    this.fanout.lags.push(lag);
    if (lag > this.stepFanoutLagMax) this.stepFanoutLagMax = lag;
    const w = Math.floor(this.postStart[post]! / 10_000);
    let list = this.fanout.lagWindows.get(w);
    if (!list) this.fanout.lagWindows.set(w, (list = []));
    list.push(lag);
    this.postFree.push(post);
  }

  // ------------------------------------------------------------------------------- admin actions

  private event(kind: string, label: string, detail: Record<string, unknown>): void {
    this.events.push({ t: this.sim.now, kind, label, detail });
  }

  private admin(a: ModelAction): void {
    const now = this.sim.now;
    switch (a.action) {
      case 'cache_kill': {
        const node = this.topo.caches.find((n) => n.name === a.node);
        if (!node) throw simError('SG_ERR_INVALID_PARAM', `admin cache_kill: no cache node "${a.node}" (${this.topo.caches.map((n) => n.name).join(', ')})`);
        if (node.gutter && a.removeFromRing) throw simError('SG_ERR_INVALID_PARAM', `admin cache_kill: "${a.node}" is a gutter node: it is not on the ring, so it cannot be removed from it`);
        node.alive = false;
        const lost = node.wipe();
        if (a.removeFromRing) {
          node.onRing = false;
          this.topo.ringChanged(this.topo.ring.without(node.name));
        } else this.topo.servingChanged();
        this.event('cache_kill', `${node.name} killed (${lost.toLocaleString('en-US')} items lost${a.removeFromRing ? ', off the ring' : ''})`, { node: node.name, itemsLost: lost, onRing: !a.removeFromRing });
        return;
      }
      case 'cache_revive': {
        const node = this.topo.caches.find((n) => n.name === a.node);
        if (!node) throw simError('SG_ERR_INVALID_PARAM', `admin cache_revive: no cache node "${a.node}"`);
        node.alive = true;
        node.wipe();
        if (!node.onRing && !node.gutter) {
          node.onRing = true;
          this.topo.ringChanged(this.topo.ring.with(node.name));
        } else this.topo.servingChanged();
        this.event('cache_revive', `${node.name} revived (empty)`, { node: node.name });
        return;
      }
      case 'db_lag':
        this.topo.replicaDelayMs = a.lagMs;
        this.event('replica_lag', `replica lag ${a.lagMs.toLocaleString('en-US')} ms on every replica`, { node: 'all', lagMs: a.lagMs });
        return;
      case 'db_fail': {
        const server = this.topo.servers.find((s) => s.name === a.server);
        if (!server) throw simError('SG_ERR_INVALID_PARAM', `admin db_fail: no server "${a.server}"`);
        if (server.down) throw simError('SG_ERR_INVALID_PARAM', `admin db_fail: ${server.name} is already down`);
        // The writes its replica had not applied are lost on promotion; the replica becomes the primary.
        const lost = server.owed.after(now);
        this.topo.writesLost += lost;
        if (server.replica) {
          server.primary = server.replica;
          server.replica = null;
          server.apply = null;
          server.owed.clear();
          const promoted = server.replicaName;
          server.replicaName = null;
          this.event('db_fail', `${server.name} failed, ${promoted} promoted (${lost.toLocaleString('en-US')} writes lost)`, { node: server.name, promoted, writesLost: lost });
        } else {
          server.down = true;
          this.event('db_fail', `${server.name} failed (down)`, { node: server.name, writesLost: 0 });
        }
        return;
      }
      case 'shard_split': {
        const from = this.topo.servers[a.server];
        if (!from) throw simError('SG_ERR_INVALID_PARAM', `admin shard_split: no server ${a.server}`);
        if (from.down) throw simError('SG_ERR_INVALID_PARAM', `admin shard_split: ${from.name} is down: its shards cannot be copied`);
        const shards = this.topo.shardMap.shardsOn(from.index);
        const to = this.topo.addServer();
        // Cloned as a streaming replica first: the copy's time is the rows on the moving shards at the apply rate.
        const accounts = this.pop.size / Math.max(1, this.topo.servers.length - 1);
        const rows = (accounts * (1 + this.pop.spec.mediaPerUser + this.pop.spec.avgFollows)) / 2;
        const copyMs = (1000 * rows) / this.cfg.capacity.replicaApplyPerS;
        this.event('shard_split', `split of ${Math.floor(shards.length / 2)} shards ${from.name} → ${to.name} started`, { from: from.name, to: to.name, shards: Math.floor(shards.length / 2), copyMs });
        this.sim.at(now + copyMs, this.H_SPLIT_DONE, from.index, to.index);
        return;
      }
      case 'shard_move': {
        const L = this.topo.shardMap.logical;
        if (!(Number.isInteger(a.shard) && a.shard >= 0 && a.shard < L)) throw simError('SG_ERR_INVALID_PARAM', `admin shard_move: shard must be an integer from 0 to ${L - 1} (got ${a.shard})`);
        const to = typeof a.to === 'number' ? this.topo.servers[a.to] : this.topo.servers.find((s) => s.name === a.to);
        if (!to) throw simError('SG_ERR_INVALID_PARAM', `admin shard_move: no server ${JSON.stringify(a.to)} (${this.topo.servers.map((s) => s.name).join(', ')})`);
        const from = this.topo.servers[this.topo.shardMap.physicalOf(a.shard)]!;
        if (from === to) throw simError('SG_ERR_INVALID_PARAM', `admin shard_move: logical shard ${a.shard} is already on ${from.name}`);
        if (from.down || to.down) throw simError('SG_ERR_INVALID_PARAM', `admin shard_move: ${(from.down ? from : to).name} is down`);
        if (this.moving.has(a.shard)) throw simError('SG_ERR_INVALID_PARAM', `admin shard_move: logical shard ${a.shard} is already moving`);
        // Copied at the apply rate (all of one logical shard's rows: its accounts, their photos and follows), then repointed.
        const rows = (this.pop.size / L) * (1 + this.pop.spec.mediaPerUser + this.pop.spec.avgFollows);
        const copyMs = (1000 * rows) / this.cfg.capacity.replicaApplyPerS;
        this.moving.set(a.shard, from.index);
        this.event('shard_move', `move of shard ${a.shard} ${from.name} → ${to.name} started`, { from: from.name, to: to.name, shards: 1, shard: a.shard, copyMs });
        this.sim.at(now + copyMs, this.H_MOVE_DONE, a.shard, to.index);
        return;
      }
      case 'db_revive': {
        const server = this.topo.servers.find((s) => s.name === a.server);
        if (!server) throw simError('SG_ERR_INVALID_PARAM', `admin db_revive: no server "${a.server}"`);
        server.down = false;
        this.event('db_revive', `${server.name} revived`, { node: server.name });
        return;
      }
      case 'db_service_time': {
        if (!(a.serviceTimeMs >= 0 && Number.isFinite(a.serviceTimeMs))) throw simError('SG_ERR_INVALID_PARAM', `admin db_service_time: serviceTimeMs must be a number ≥ 0 (got ${a.serviceTimeMs})`);
        const fromMs = this.serviceTimeMs;
        this.serviceTimeMs = a.serviceTimeMs;
        this.event('db_service_time', `db service time ${fromMs.toLocaleString('en-US')} → ${a.serviceTimeMs.toLocaleString('en-US')} ms`, { fromMs, toMs: a.serviceTimeMs });
        return;
      }
      case 'cache_leases': {
        this.topo.setLeases(a.enabled);
        this.event('cache_leases', `leases ${a.enabled ? 'on' : 'off'}`, { enabled: a.enabled });
        return;
      }
      case 'celebrity_post': {
        const rank = a.rank ?? 0;
        if (!(Number.isInteger(rank) && rank >= 0 && rank < this.pop.celebrities.length)) throw simError('SG_ERR_INVALID_PARAM', `admin celebrity_post: rank must be an integer from 0 to ${this.pop.celebrities.length - 1} (got ${rank})`);
        const owner = this.pop.celebrities[rank]!;
        // The upload's row on the owner's shard, the owner's cached recent list deleted, then the fan-out job.
        const row = this.wRow;
        this.wRow = -1;
        const written = this.dbWrite(this.pop.shard[owner]!, owner, now, owner, K_UPLOAD);
        this.wRow = row;
        // The upload's row could not be written (its server down, its pool full): no post, no fan-out (the live upload answers an error).
        if (written < 0) throw simError('SG_ERR_INVALID_PARAM', `admin celebrity_post: the upload by celebrity_${rank + 1} failed: its shard's server ${this.topo.serverOfShard(this.pop.shard[owner]!).name} refused the write`);
        this.wRow = -1;
        this.pop.post(owner);
        this.cacheDelete(cacheKey(KEY.recent, owner), KEY.recent, owner, now);
        this.redisOp(now, 1, false);
        this.startFanout(owner, now);
        this.wRow = row;
        const followers = this.pop.followers[owner]!;
        this.event('celebrity_post', `@celebrity_${rank + 1} posts to ${followers.toLocaleString('en-US')} followers`, { user: String(this.pop.userId(owner)), username: `celebrity_${rank + 1}`, rank, followers });
        return;
      }
    }
  }

  private moveDone(shard: number, toIndex: number): void {
    const from = this.topo.servers[this.moving.get(shard)!]!;
    this.moving.delete(shard);
    const to = this.topo.servers[toIndex]!;
    this.topo.shardMap.repoint(shard, toIndex);
    this.event('shard_move_done', `move of shard ${shard} ${from.name} → ${to.name} done`, { from: from.name, to: to.name, shards: 1, shard, state: 'done' });
  }

  private splitDone(fromIndex: number, toIndex: number): void {
    const shards = this.topo.shardMap.shardsOn(fromIndex);
    const moving = shards.slice(Math.ceil(shards.length / 2));
    for (const s of moving) this.topo.shardMap.repoint(s, toIndex);
    const from = this.topo.servers[fromIndex]!;
    const to = this.topo.servers[toIndex]!;
    this.event('shard_split_done', `split of ${moving.length} shards ${from.name} → ${to.name} done`, { from: from.name, to: to.name, shards: moving.length, state: 'done' });
  }

  // ------------------------------------------------------------------------------- sampling

  private sample(final = false): void {
    const now = this.sim.now;
    const S = this.series;
    S.t.push(now);
    S.requests.push(this.stepRequests);
    this.stepRequests = 0;
    S.cacheHits.push(this.topo.caches.map((n) => n.stepHits));
    S.cacheLookups.push(this.topo.caches.map((n) => n.stepLookups));
    S.cacheBytes.push(this.topo.caches.map((n) => n.lru.bytes));
    for (const n of this.topo.caches) {
      n.stepHits = 0;
      n.stepLookups = 0;
      if (n.lru.bytes > n.peakBytes) n.peakBytes = n.lru.bytes;
    }
    S.fills.push(this.stepFills);
    S.herd.push(this.stepHerd);
    S.herdFills.push(this.stepHerdFills);
    S.evictions.push(this.topo.caches.reduce((a, n) => a + n.evictions, 0));
    this.stepFills = 0;
    this.stepHerd = 0;
    this.stepHerdFills = 0;
    S.serverOps.push(this.topo.servers.map((s) => s.stepOps));
    S.poolInUse.push(this.topo.servers.map((s) => s.primary.busy(now)));
    S.poolWaiting.push(this.topo.servers.map((s) => s.primary.queued(now)));
    S.replicaLag.push(
      this.topo.servers.map((s) => {
        // The lag a write applied in the step waited, or the oldest owed write's age.
        const v = s.stepLagMax;
        s.stepLagMax = 0;
        return v;
      }),
    );
    for (const s of this.topo.servers) s.stepOps = 0;
    // Heat: logical shards in bands; the busiest five.
    const L = this.stepShardOps.length;
    const bandWidth = Math.ceil(L / HOT_BANDS);
    const bands = new Array<number>(Math.ceil(L / bandWidth)).fill(0);
    const top: Array<[number, number]> = [];
    for (let s = 0; s < L; s++) {
      const v = this.stepShardOps[s]!;
      if (v === 0) continue;
      bands[Math.floor(s / bandWidth)]! += v;
      if (top.length < 5 || v > top[top.length - 1]![1]) {
        top.push([s, v]);
        top.sort((a, b) => b[1] - a[1]);
        if (top.length > 5) top.pop();
      }
    }
    this.stepShardOps.fill(0);
    S.shardBands.push(bands);
    S.topShards.push(top);
    S.deliveries.push(this.stepDeliveries);
    this.stepDeliveries = 0;
    S.queueDepth.push(this.topo.workers.queued(now));
    S.running.push(this.topo.workers.busy(now));
    S.staleReads.push(this.stepStale);
    this.stepStale = 0;
    S.redisOps.push(this.stepRedis);
    this.stepRedis = 0;
    const resources: Array<{ name: string; r: { busySumMs: number; rejected: number; servers: number } }> = [
      { name: 'app', r: this.topo.app },
      { name: 'workers', r: this.topo.workers },
      { name: 'feed-primary', r: this.topo.redis },
      ...(this.topo.redisReplica ? [{ name: 'feed-replica', r: this.topo.redisReplica }] : []),
      ...this.topo.caches.map((n) => ({ name: n.name, r: n.server })),
      ...this.topo.servers.flatMap((s) => [{ name: s.name, r: s.primary }, ...(s.replica ? [{ name: s.replicaName!, r: s.replica }] : [])]),
    ];
    const width = S.t.length > 1 ? now - S.t[S.t.length - 2]! : now;
    for (const { name, r } of resources) {
      let u = S.use.get(name);
      if (!u) S.use.set(name, (u = new Array<number>(S.t.length - 1).fill(0)));
      const before = this.lastBusy.get(name) ?? 0;
      u.push(width > 0 ? Math.min(1, (r.busySumMs - before) / (r.servers * width)) : 0);
      this.lastBusy.set(name, r.busySumMs);
      let f = S.refusals.get(name);
      if (!f) S.refusals.set(name, (f = new Array<number>(S.t.length - 1).fill(0)));
      f.push(r.rejected - (this.lastRefused.get(name) ?? 0));
      this.lastRefused.set(name, r.rejected);
    }
    let busy = 0;
    let max = 0;
    for (let i = 0; i < this.scenarios.length; i++) {
      busy += this.busyVus[i]!;
      max += this.maxVus[i]!;
    }
    this.rec.vus(busy, max, now);
    this.rec.step?.(now);
    this.stepFanoutLagMax = -1;
    // Forget writes every replica has applied (bounded memory).
    if (this.recentWrites.size > 100_000) for (const [k, t] of this.recentWrites) if (t <= now) this.recentWrites.delete(k);
    if (this.inFlightFills.size > 100_000) for (const [k, t] of this.inFlightFills) if (t < now) this.inFlightFills.delete(k);
    if (!final && now + this.stepMs <= this.endMs + 1) this.sim.at(now + this.stepMs, this.H_SAMPLE);
  }
}

export { ST_NOT_FOUND, ST_OK, ST_UNAVAILABLE };
export type { CacheNode };

/** Appends `x` to the first `n` entries of `list` unless it is among them; returns the new count. */
function addOnce(list: Float64Array, n: number, x: number): number {
  for (let j = 0; j < n; j++) if (list[j] === x) return n;
  list[n] = x;
  return n + 1;
}
