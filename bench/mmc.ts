// The engine's M/M/c queue: Poisson arrivals (rate λ) at one Resource with c servers, exponential
// service (rate μ), first come first served, no queue limit. One event per customer: the arrival
// admits the visit (the Resource computes its start and end under FCFS) and schedules the next
// arrival. Used by the bench (customers/s beside SimPy's) and by test/engine-queueing.test.ts.

import { Prng } from '../sim/engine/prng.ts';
import { Resource } from '../sim/engine/resource.ts';
import { Simulation } from '../sim/engine/simulation.ts';

export interface MmcOptions {
  /** Arrival rate (customers per time unit). */
  lambda: number;
  /** Service rate of one server (customers per time unit). */
  mu: number;
  /** Servers (count). */
  servers: number;
  /** Customers to admit (count). */
  customers: number;
  seed: number;
}

export interface MmcResult {
  customers: number;
  /** Mean wait in the queue (time units). */
  meanWait: number;
  /** Mean number waiting over the run (Lq), from the resource's queue area. */
  meanQueue: number;
  /** Virtual time of the last arrival (time units). */
  endTime: number;
  /** Mean number of busy servers up to the last arrival (busy time over time). */
  utilisation: number;
  events: number;
  waitSum: number;
  busySum: number;
  queueArea: number;
  maxQueue: number;
  maxWait: number;
  wallMs: number;
}

export function runMmc(o: MmcOptions): MmcResult {
  const sim = new Simulation();
  const res = new Resource('mmc', o.servers, Number.MAX_SAFE_INTEGER);
  const prng = new Prng(o.seed);
  const meanArrival = 1 / o.lambda;
  const meanService = 1 / o.mu;
  let left = o.customers;
  const arrive = sim.on(() => {
    res.admit(sim.now, prng.exponential(meanService));
    if (--left > 0) sim.after(prng.exponential(meanArrival), arrive);
  });
  const t0 = performance.now();
  if (left > 0) sim.at(0, arrive);
  sim.run();
  const wallMs = performance.now() - t0;
  const end = sim.now;
  // Account the queue up to the last arrival, so queueArea and the waits cover the same customers'
  // time span (waits of customers still queued at the end are already in waitSum: see the test).
  res.queued(end);
  return {
    customers: res.arrivals,
    meanWait: res.waitSumMs / res.arrivals,
    meanQueue: res.queueAreaMs / end,
    endTime: end,
    utilisation: res.busySumMs / end,
    events: sim.events,
    waitSum: res.waitSumMs,
    busySum: res.busySumMs,
    queueArea: res.queueAreaMs,
    maxQueue: res.maxQueue,
    maxWait: res.maxWaitMs,
    wallMs,
  };
}

/** Erlang C: the probability that an arrival waits in an M/M/c queue with offered load a = λ/μ. */
export function erlangC(servers: number, lambda: number, mu: number): number {
  const a = lambda / mu;
  const rho = a / servers;
  if (!(rho < 1)) return 1;
  // Σ_{k<c} a^k/k! and a^c/c!, by terms (no factorials).
  let term = 1;
  let sum = 0;
  for (let k = 0; k < servers; k++) {
    sum += term;
    term *= a / (k + 1);
  }
  const top = term / (1 - rho);
  return top / (sum + top);
}

/** The analytic mean wait in the queue of an M/M/c queue: Erlang C / (cμ − λ). */
export function mmcMeanWait(servers: number, lambda: number, mu: number): number {
  return erlangC(servers, lambda, mu) / (servers * mu - lambda);
}
