// The work each request does, counted by the topology's parts as they do it: cache lookups and
// misses, sets and deletes, database reads and writes, Redis commands, jobs queued, feed deliveries,
// bytes answered. Totals are kept per route (`GET /v1/users/self/feed`) and per job kind (`job fanout`):
// a request's scope (sim/engine/actor-context.ts) points at counts of its own, added to its route's
// when it is answered (`finishRequest`), and a job runs in a scope of its own, so the fan-out a
// post causes is counted under the job, not under the upload.
// They do not depend on the machine's speed (a lease wait, counted apart, does): they are what the
// CI gate judges.
//
// Each route's requests are also split by outcome, as `scalegram calibrate` fits costs per outcome:
// whether any cache key missed (`hit` / `miss`), and where its database reads went (`replica`,
// `primary`, or `none`). The outcome's work is kept beside the route's, and the server-side time of
// its requests (from the first hook to the answer: this machine's) apart from it, so work.json stays
// free of timings.

import { WORK_FIELDS, WORK_FIELD_TEXT, WorkCounts, type WorkField } from '../engine/work-counts.ts';

export { WORK_FIELDS, WORK_FIELD_TEXT, WorkCounts, type WorkField };

export type WorkTotals = { count: number; failed: number } & Record<WorkField, number>;

/** A request's outcome: `hit` or `miss` (any key missed), then where its reads went. */
export type Outcome = `${'hit' | 'miss'}/${'replica' | 'primary' | 'none'}`;

export interface WorkSnapshot {
  /** Per route (`METHOD /path/pattern`), totals over the run: divide by `count` for work per request. */
  routes: Record<string, WorkTotals>;
  /** Per job kind (`fanout`, `resize`, …), totals over the run: work per job. */
  jobs: Record<string, WorkTotals>;
  /** Per route, its requests' totals per outcome (they sum to the route's). */
  outcomes?: Record<string, Partial<Record<Outcome, WorkTotals>>>;
  /**
   * Per route and outcome (and `all` of the route's), the server-side time of its requests (ms, this
   * machine's), kept out of work.json; `samples` is how many times the percentiles are of (every
   * request's up to MAX_TIME_SAMPLES, then a sample spread over the run).
   */
  outcomeServerMs?: Record<string, Partial<Record<Outcome | 'all', { p50: number; p99: number; samples: number }>>>;
}

/**
 * Server-side times kept per route and outcome: every one up to this many, then every second, every
 * fourth … (a sample spread over the whole run, enough for a median and a p99).
 */
export const MAX_TIME_SAMPLES = 20_000;

const OUTCOMES: readonly Outcome[] = ['hit/none', 'hit/primary', 'hit/replica', 'miss/none', 'miss/primary', 'miss/replica'];

/** The outcome of a request from its counts (a constant string: no string is built per request). */
export function outcomeOf(c: WorkCounts): Outcome {
  return OUTCOMES[(c.cacheMisses > 0 ? 3 : 0) + (c.dbReads === 0 ? 0 : c.replicaReads > 0 ? 2 : 1)]!;
}

function add(into: WorkCounts, from: WorkCounts): void {
  into.count += from.count;
  into.failed += from.failed;
  for (const f of WORK_FIELDS) into[f] += from[f];
  into.replicaReads += from.replicaReads;
}

function totals(c: WorkCounts): WorkTotals {
  const out = { count: c.count, failed: c.failed } as WorkTotals;
  for (const f of WORK_FIELDS) out[f] = c[f];
  return out;
}

/** p-th percentile (0–100) of sorted samples, nearest rank. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

class Timed extends WorkCounts {
  times = new Float64Array(64);
  /** Times kept. */
  samples = 0;
  /** Times offered. */
  seen = 0;
  /** One time kept in `stride` (a power of two, doubled whenever the samples fill up and are halved). */
  private stride = 1;

  time(ms: number): void {
    if (this.seen++ % this.stride !== 0) return;
    if (this.samples === MAX_TIME_SAMPLES) {
      // Keep every second one: the sample stays spread over the whole run.
      for (let i = 0; i < MAX_TIME_SAMPLES / 2; i++) this.times[i] = this.times[2 * i]!;
      this.samples = MAX_TIME_SAMPLES / 2;
      this.stride *= 2;
      if ((this.seen - 1) % this.stride !== 0) return;
    }
    if (this.samples === this.times.length) {
      const grown = new Float64Array(Math.min(MAX_TIME_SAMPLES, this.times.length * 2));
      grown.set(this.times);
      this.times = grown;
    }
    this.times[this.samples++] = ms;
  }
}

export class WorkMeter {
  private readonly routes = new Map<string, WorkCounts>();
  private readonly jobs = new Map<string, WorkCounts>();
  private readonly outcomes = new Map<string, Map<Outcome | 'all', Timed>>();

  /** The counts of a route, made on first use. */
  route(name: string): WorkCounts {
    let c = this.routes.get(name);
    if (!c) this.routes.set(name, (c = new WorkCounts()));
    return c;
  }

  /** The counts of a job kind, made on first use. */
  job(kind: string): WorkCounts {
    let c = this.jobs.get(kind);
    if (!c) this.jobs.set(kind, (c = new WorkCounts()));
    return c;
  }

  /**
   * A request answered: its own counts (`request`, what its scope counted, with count and failed
   * set) are added to its route's and to its outcome's, with its server-side time (ms).
   */
  finishRequest(route: string, request: WorkCounts, serverMs: number): void {
    add(this.route(route), request);
    let byOutcome = this.outcomes.get(route);
    if (!byOutcome) this.outcomes.set(route, (byOutcome = new Map([['all', new Timed()]])));
    byOutcome.get('all')!.time(serverMs);
    const o = outcomeOf(request);
    let c = byOutcome.get(o);
    if (!c) byOutcome.set(o, (c = new Timed()));
    add(c, request);
    c.time(serverMs);
  }

  snapshot(): WorkSnapshot {
    const sorted = <V>(m: Map<string, V>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const out = (m: Map<string, WorkCounts>): Record<string, WorkTotals> => Object.fromEntries(sorted(m).map(([k, c]) => [k, totals(c)]));
    const snap: WorkSnapshot = { routes: out(this.routes), jobs: out(this.jobs) };
    if (this.outcomes.size > 0) {
      snap.outcomes = {};
      snap.outcomeServerMs = {};
      for (const [route, byOutcome] of sorted(this.outcomes)) {
        const entries = [...byOutcome].sort(([a], [b]) => (a < b ? -1 : 1));
        snap.outcomes[route] = Object.fromEntries(entries.filter(([o]) => o !== 'all').map(([o, c]) => [o, totals(c)]));
        snap.outcomeServerMs[route] = Object.fromEntries(
          entries.map(([o, c]) => {
            const s = c.times.slice(0, c.samples).sort();
            return [o, { p50: percentile(s, 50), p99: percentile(s, 99), samples: c.samples }];
          }),
        );
      }
    }
    return snap;
  }
}
