// The work each request does, counted by the topology's parts as they do it: cache lookups and
// misses, sets and deletes, database reads and writes, Redis commands, jobs queued, feed deliveries,
// bytes answered. Totals are kept per route (`GET /v1/users/self/feed`) and per job kind (`job fanout`):
// a request's scope (sim/engine/actor-context.ts) points at its route's counts, and a job runs in a
// scope of its own, so the fan-out a post causes is counted under the job, not under the upload.
// They do not depend on the machine's speed (a lease wait, counted apart, does): they are what the
// CI gate judges.

import { WORK_FIELDS, WORK_FIELD_TEXT, WorkCounts, type WorkField } from '../engine/work-counts.ts';

export { WORK_FIELDS, WORK_FIELD_TEXT, WorkCounts, type WorkField };

export type WorkTotals = { count: number; failed: number } & Record<WorkField, number>;

export interface WorkSnapshot {
  /** Per route (`METHOD /path/pattern`), totals over the run: divide by `count` for work per request. */
  routes: Record<string, WorkTotals>;
  /** Per job kind (`fanout`, `resize`, …), totals over the run: work per job. */
  jobs: Record<string, WorkTotals>;
}

export class WorkMeter {
  private readonly routes = new Map<string, WorkCounts>();
  private readonly jobs = new Map<string, WorkCounts>();

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

  snapshot(): WorkSnapshot {
    const out = (m: Map<string, WorkCounts>): Record<string, WorkTotals> =>
      Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, c]) => [k, { ...c }]));
    return { routes: out(this.routes), jobs: out(this.jobs) };
  }
}
