// The six k6 executors on virtual time (exact, deterministic), plus two short real-time runs: arrival
// timing, dropped iterations, graceful stop and ramp-down, VU accounting, start times, aborts, budgets.

import { describe, expect, it } from 'vitest';
import { RealClock, VirtualClock, type Clock } from '../sim/engine/clock.ts';
import { resolveOptions, type Knobs, type ResolvedScenario } from '../scenarios/runner/options.ts';
import { VuPool } from '../scenarios/runner/vu-pool.ts';
import { ExecutorBudgetError, startScenario, type ExecutorDeps, type ScenarioRun, type ScenarioTotals } from '../scenarios/runner/executors/index.ts';
import { constantArrivalCount } from '../scenarios/runner/executors/constant-arrival-rate.ts';
import { rampingArrivals } from '../scenarios/runner/executors/ramping-arrival-rate.ts';
import { vuSteps } from '../scenarios/runner/executors/ramping-vus.ts';

function scenario(raw: Record<string, unknown>, knobs: Partial<Knobs> = {}): ResolvedScenario {
  return resolveOptions({ scenarios: { s: raw } }, { speed: 1, scale: 1, execNames: ['default'], ...knobs }).scenarios[0]!;
}

interface Start {
  vu: number;
  /** Clock ms relative to the test start. */
  atMs: number;
  intendedMs: number;
}

/** How long an iteration takes, given its index in the scenario (ms of clock time). */
type IterationMs = (index: number) => number;

function harness<C extends Clock = VirtualClock>(iterationMs: IterationMs | number, clock: C = new VirtualClock() as Clock as C) {
  const t0 = clock.nowMs();
  const pool = new VuPool();
  const abort = new AbortController();
  const starts: Start[] = [];
  const startedPerScenario = new Map<object, number>();
  const interruptedAtMs: number[] = [];
  const dropped: number[] = [];
  const delays: number[] = [];
  const length = typeof iterationMs === 'number' ? () => iterationMs : iterationMs;
  const deps: ExecutorDeps = {
    clock,
    vus: pool,
    signal: abort.signal,
    record: (metric, value, tags) => {
      expect(tags).toEqual({ scenario: 's' });
      (metric === 'dropped_iterations' ? dropped : delays).push(value);
    },
    runIteration: (vu, state, intendedMs, signal) => {
      const index = starts.length;
      starts.push({ vu, atMs: clock.nowMs() - t0, intendedMs: intendedMs - t0 });
      // The runner numbers iterations from state.iterationsStarted, so it must count this one already.
      const mine = (startedPerScenario.get(state) ?? 0) + 1;
      startedPerScenario.set(state, mine);
      if (state.iterationsStarted !== mine) throw new Error(`iterationsStarted ${state.iterationsStarted}, expected ${mine}`);
      const ms = length(index);
      if (ms <= 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const onAbort = () => {
          interruptedAtMs.push(clock.nowMs() - t0);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        void clock.sleep(ms).then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    },
  };
  return { clock, t0, pool, abort, starts, interruptedAtMs, dropped, delays, deps };
}

/** Advances a virtual clock in steps until `run` is done (bounded, so a hang fails fast). */
async function finish(run: ScenarioRun, clock: VirtualClock, maxMs = 120_000, stepMs = 100): Promise<ScenarioTotals> {
  let result: ScenarioTotals | undefined;
  let error: unknown;
  run.done.then((r) => (result = r), (e) => (error = e));
  for (let spent = 0; spent <= maxMs; spent += stepMs) {
    await new Promise((r) => setImmediate(r));
    if (error) throw error;
    if (result) return result;
    await clock.advance(stepMs);
  }
  throw new Error(`scenario not done after ${maxMs} ms of virtual time`);
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('constant-arrival-rate', () => {
  it('starts 100/s for 2 s: 200 iterations, each within 1 ms of t0 + i·10 ms', async () => {
    const h = harness(1);
    const run = startScenario(
      scenario({ executor: 'constant-arrival-rate', rate: 100, duration: '2s', preAllocatedVUs: 5 }),
      h.deps,
      h.t0,
    );
    const totals = await finish(run, h.clock);
    expect(totals).toEqual({ iterationsStarted: 200, iterationsCompleted: 200, iterationsInterrupted: 0, dropped: 0 });
    h.starts.forEach((s, i) => {
      expect(Math.abs(s.atMs - i * 10)).toBeLessThan(1);
      expect(s.intendedMs).toBeCloseTo(i * 10, 9);
    });
    expect(h.delays).toHaveLength(200);
    expect(Math.max(...h.delays)).toBeLessThan(1);
    expect(h.pool.active()).toBe(0);
  });

  it("counts as active only the VUs busy in an iteration, as k6's vus metric does (20 preallocated, 1 busy)", async () => {
    // 10/s of 35 ms iterations: one VU busy at a time, from 20 preallocated.
    const h = harness(35);
    const run = startScenario(scenario({ executor: 'constant-arrival-rate', rate: 10, duration: '1s', preAllocatedVUs: 20 }), h.deps, h.t0);
    // Arrivals at 0, 100, 200 … ms, each busy for 35 ms.
    await h.clock.advance(150);
    expect(h.pool.active()).toBe(20);
    expect(run.activeVUs()).toBe(0);
    await h.clock.advance(60);
    expect(run.activeVUs()).toBe(1);
    await finish(run, h.clock);
    expect(run.activeVUs()).toBe(0);
  });

  it('drops arrivals that find no free VU, and counts them exactly: started + dropped = planned', async () => {
    // Each iteration takes 50 ms and only 2 VUs exist: of every 5 arrivals (one per 10 ms), 2 start.
    const h = harness(50);
    const run = startScenario(
      scenario({ executor: 'constant-arrival-rate', rate: 100, duration: '2s', preAllocatedVUs: 2, maxVUs: 2 }),
      h.deps,
      h.t0,
    );
    const totals = await finish(run, h.clock);
    expect(totals.iterationsStarted + totals.dropped).toBe(200);
    expect(totals.iterationsStarted).toBe(80);
    expect(totals.dropped).toBe(120);
    expect(sum(h.dropped)).toBe(120);
    expect(h.dropped.every((v) => v === 1)).toBe(true);
    // A dropped arrival is never run late: every start is on its own arrival time.
    for (const s of h.starts) expect(s.atMs).toBeCloseTo(s.intendedMs, 9);
    expect(h.pool.max()).toBe(2);
  });

  it('grows from preAllocatedVUs towards maxVUs instead of dropping, while it may', async () => {
    const h = harness(50);
    const run = startScenario(
      scenario({ executor: 'constant-arrival-rate', rate: 100, duration: '1s', preAllocatedVUs: 1, maxVUs: 10 }),
      h.deps,
      h.t0,
    );
    const totals = await finish(run, h.clock);
    expect(totals).toMatchObject({ iterationsStarted: 100, dropped: 0 });
    // 50 ms iterations at one arrival per 10 ms need 5 VUs at once, no more.
    expect(h.pool.max()).toBe(5);
    expect(new Set(h.starts.map((s) => s.vu)).size).toBe(5);
  });

  it('interrupts an iteration still running when gracefulStop expires, and counts it interrupted', async () => {
    const h = harness((i) => (i === 0 ? 5000 : 1));
    const run = startScenario(
      scenario({ executor: 'constant-arrival-rate', rate: 2, duration: '1s', preAllocatedVUs: 2, gracefulStop: '500ms' }),
      h.deps,
      h.t0,
    );
    const totals = await finish(run, h.clock, 10_000, 50);
    expect(totals).toEqual({ iterationsStarted: 2, iterationsCompleted: 1, iterationsInterrupted: 1, dropped: 0 });
    expect(h.interruptedAtMs).toEqual([1500]);
  });

  it('plans its arrival count without floating-point drift', () => {
    expect(constantArrivalCount(100, 1000, 2000)).toBe(200);
    expect(constantArrivalCount(3, 1000, 1000)).toBe(3);
    expect(constantArrivalCount(1.15, 1000 / 720, 60_000)).toBe(49_680);
  });
});

describe('ramping-arrival-rate', () => {
  it('ramps 0→100/s over 2 s: about 100 iterations, a quarter of them in the first second', async () => {
    const h = harness(1);
    const run = startScenario(
      scenario({ executor: 'ramping-arrival-rate', startRate: 0, stages: [{ duration: '2s', target: 100 }], preAllocatedVUs: 3 }),
      h.deps,
      h.t0,
    );
    const totals = await finish(run, h.clock);
    expect(totals.iterationsStarted).toBeGreaterThanOrEqual(99);
    expect(totals.iterationsStarted).toBeLessThanOrEqual(100);
    expect(totals.dropped).toBe(0);
    // The area under a 0→50/s line over the first second is 25.
    expect(h.starts.filter((s) => s.atMs <= 1000)).toHaveLength(25);
    // Arrival n is where the area a·t²/2 reaches n (a = 0.1/ms over 2000 ms = 5e-5 per ms²): t = 200·√n ms.
    expect(h.starts[0]!.intendedMs).toBeCloseTo(200, 6);
    expect(h.starts[24]!.intendedMs).toBeCloseTo(1000, 6);
  });

  it('holds a constant stage at its rate and carries fractional arrivals across stages, as k6', () => {
    const times = [...rampingArrivals(10, 1000, [{ durationMs: 1000, target: 10 }, { durationMs: 1000, target: 10 }])];
    expect(times).toHaveLength(20);
    times.forEach((t, i) => expect(t).toBeCloseTo((i + 1) * 100, 6));
    const ramp = [...rampingArrivals(0, 1000, [{ durationMs: 1500, target: 3 }, { durationMs: 1000, target: 3 }])];
    // 2.25 arrivals in the ramp, then the third at area 3: 0.75 more at 3/s, i.e. 250 ms into stage two.
    expect(ramp.slice(0, 3).map((t) => Math.round(t))).toEqual([1000, 1414, 1750]);
  });
});

describe('constant-vus', () => {
  it('3 VUs with 100 ms iterations for 1 s run 30 iterations', async () => {
    const h = harness(100);
    const run = startScenario(scenario({ executor: 'constant-vus', vus: 3, duration: '1s' }), h.deps, h.t0);
    expect(run.plannedMs).toBe(31_000);
    await h.clock.advance(500);
    expect(run.activeVUs()).toBe(3);
    expect(run.state.progress()).toBeCloseTo(0.5, 6);
    const totals = await finish(run, h.clock);
    expect(totals).toEqual({ iterationsStarted: 30, iterationsCompleted: 30, iterationsInterrupted: 0, dropped: 0 });
    expect(new Set(h.starts.map((s) => s.vu))).toEqual(new Set([1, 2, 3]));
    // Closed model: an iteration is meant to start when it does.
    for (const s of h.starts) expect(s.intendedMs).toBe(s.atMs);
    expect(h.delays.every((d) => d === 0)).toBe(true);
    expect(run.activeVUs()).toBe(0);
    expect(h.pool.active()).toBe(0);
  });

  it('interrupts an iteration longer than gracefulStop at duration + gracefulStop', async () => {
    const h = harness(3000);
    const run = startScenario(scenario({ executor: 'constant-vus', vus: 1, duration: '1s', gracefulStop: '500ms' }), h.deps, h.t0);
    const totals = await finish(run, h.clock, 10_000, 50);
    expect(totals).toEqual({ iterationsStarted: 1, iterationsCompleted: 0, iterationsInterrupted: 1, dropped: 0 });
    expect(h.interruptedAtMs).toEqual([1500]);
  });

  it('lets an iteration that ends within gracefulStop complete, and starts no new one after duration', async () => {
    const h = harness(700);
    const run = startScenario(scenario({ executor: 'constant-vus', vus: 1, duration: '1s', gracefulStop: '1s' }), h.deps, h.t0);
    const totals = await finish(run, h.clock, 10_000, 50);
    // Starts at 0 and 700; the second ends at 1400, inside the graceful window; none starts at 1400.
    expect(totals).toEqual({ iterationsStarted: 2, iterationsCompleted: 2, iterationsInterrupted: 0, dropped: 0 });
  });
});

describe('shared-iterations and per-vu-iterations', () => {
  it('shared-iterations runs exactly 10 iterations over 3 VUs, faster VUs taking more', async () => {
    const h = harness((i) => (i % 3 === 0 ? 10 : 35));
    const run = startScenario(scenario({ executor: 'shared-iterations', vus: 3, iterations: 10 }), h.deps, h.t0);
    const totals = await finish(run, h.clock, 10_000, 10);
    expect(totals).toEqual({ iterationsStarted: 10, iterationsCompleted: 10, iterationsInterrupted: 0, dropped: 0 });
    expect(new Set(h.starts.map((s) => s.vu)).size).toBe(3);
    expect(run.state.progress()).toBe(1);
  });

  it('per-vu-iterations runs 3 VUs × 4 iterations = 12, four on each VU', async () => {
    const h = harness((i) => 10 + (i % 5) * 7);
    const run = startScenario(scenario({ executor: 'per-vu-iterations', vus: 3, iterations: 4 }), h.deps, h.t0);
    const totals = await finish(run, h.clock, 10_000, 10);
    expect(totals).toEqual({ iterationsStarted: 12, iterationsCompleted: 12, iterationsInterrupted: 0, dropped: 0 });
    const perVu = new Map<number, number>();
    for (const s of h.starts) perVu.set(s.vu, (perVu.get(s.vu) ?? 0) + 1);
    expect([...perVu.values()]).toEqual([4, 4, 4]);
  });

  it('maxDuration bounds shared-iterations; the iterations never started are dropped', async () => {
    const h = harness(400);
    const run = startScenario(
      scenario({ executor: 'shared-iterations', vus: 2, iterations: 20, maxDuration: '1s', gracefulStop: '0s' }),
      h.deps,
      h.t0,
    );
    const totals = await finish(run, h.clock, 10_000, 50);
    // Starts at 0, 400, 800 on each of 2 VUs; the two started at 800 are interrupted at 1000.
    expect(totals).toEqual({ iterationsStarted: 6, iterationsCompleted: 4, iterationsInterrupted: 2, dropped: 14 });
    expect(sum(h.dropped)).toBe(14);
  });

  it('maxDuration bounds per-vu-iterations the same way', async () => {
    const h = harness(300);
    const run = startScenario(
      scenario({ executor: 'per-vu-iterations', vus: 2, iterations: 5, maxDuration: '1s', gracefulStop: '1s' }),
      h.deps,
      h.t0,
    );
    const totals = await finish(run, h.clock, 10_000, 50);
    // Each VU starts at 0, 300, 600, 900; the one at 900 finishes inside gracefulStop.
    expect(totals).toEqual({ iterationsStarted: 8, iterationsCompleted: 8, iterationsInterrupted: 0, dropped: 2 });
  });
});

describe('ramping-vus', () => {
  it('plans VU changes as k6 does: up when the line reaches n, down when it reaches n−1', () => {
    const steps = [...vuSteps(0, [{ durationMs: 1000, target: 4 }, { durationMs: 1000, target: 0 }])];
    expect(steps).toEqual([
      { atMs: 250, vus: 1 },
      { atMs: 500, vus: 2 },
      { atMs: 750, vus: 3 },
      { atMs: 1000, vus: 4 },
      { atMs: 1250, vus: 3 },
      { atMs: 1500, vus: 2 },
      { atMs: 1750, vus: 1 },
      { atMs: 2000, vus: 0 },
    ]);
    expect([...vuSteps(2, [{ durationMs: 0, target: 5 }])]).toEqual([{ atMs: 0, vus: 5 }]);
  });

  it('follows its stages: active VUs at checkpoints', async () => {
    const h = harness(10);
    const run = startScenario(
      scenario({
        executor: 'ramping-vus',
        startVUs: 0,
        stages: [
          { duration: '1s', target: 10 },
          { duration: '1s', target: 10 },
          { duration: '1s', target: 0 },
        ],
      }),
      h.deps,
      h.t0,
    );
    const at = async (ms: number) => {
      await h.clock.advance(ms - (h.clock.nowMs() - h.t0));
      return run.activeVUs();
    };
    expect(await at(50)).toBe(0);
    expect(await at(550)).toBe(5);
    expect(await at(1500)).toBe(10);
    expect(await at(2550)).toBe(5);
    expect(await at(2950)).toBe(1);
    const totals = await finish(run, h.clock, 10_000, 50);
    expect(run.activeVUs()).toBe(0);
    expect(h.pool.max()).toBe(10);
    expect(h.pool.active()).toBe(0);
    expect(totals.iterationsInterrupted).toBe(0);
    expect(totals.iterationsStarted).toBe(totals.iterationsCompleted);
  });

  it('gives a VU removed in a ramp-down gracefulRampDown to finish, then interrupts it', async () => {
    const h = harness(3000);
    const run = startScenario(
      scenario({
        executor: 'ramping-vus',
        startVUs: 2,
        gracefulRampDown: '500ms',
        gracefulStop: '1s',
        stages: [
          { duration: '1s', target: 2 },
          { duration: '0s', target: 1 },
          { duration: '5s', target: 1 },
        ],
      }),
      h.deps,
      h.t0,
    );
    await h.clock.advance(1400);
    expect(run.activeVUs()).toBe(2);
    expect(h.interruptedAtMs).toEqual([]);
    await h.clock.advance(200);
    // The second VU's iteration was cut at 1000 + 500 ms; the first VU loops on.
    expect(h.interruptedAtMs).toEqual([1500]);
    expect(run.activeVUs()).toBe(1);
    const totals = await finish(run, h.clock, 10_000, 50);
    // VU 1 runs from 0 and from 3000; the second ends at 6000, exactly the regular end: nothing new starts.
    expect(totals).toEqual({ iterationsStarted: 3, iterationsCompleted: 2, iterationsInterrupted: 1, dropped: 0 });
  });

  it('a VU brought back during its ramp-down keeps its VU and is not interrupted', async () => {
    const h = harness(800);
    const run = startScenario(
      scenario({
        executor: 'ramping-vus',
        startVUs: 2,
        gracefulRampDown: '500ms',
        gracefulStop: '0s',
        stages: [
          { duration: '100ms', target: 2 },
          { duration: '0s', target: 1 },
          { duration: '200ms', target: 1 },
          { duration: '0s', target: 2 },
          { duration: '1s', target: 2 },
        ],
      }),
      h.deps,
      h.t0,
    );
    const totals = await finish(run, h.clock, 10_000, 50);
    expect(h.pool.max()).toBe(2);
    // Only the iterations still running at the end (1300 ms) are cut.
    expect(h.interruptedAtMs.every((t) => t === 1300)).toBe(true);
    expect(totals.iterationsInterrupted).toBe(2);
  });
});

describe('every executor', () => {
  it('startTime delays a scenario', async () => {
    const h = harness(100);
    const run = startScenario(scenario({ executor: 'constant-vus', vus: 1, duration: '1s', startTime: '500ms' }), h.deps, h.t0);
    expect(run.plannedMs).toBe(500 + 1000 + 30_000);
    await h.clock.advance(400);
    expect(h.starts).toHaveLength(0);
    expect(run.state.progress()).toBe(0);
    const totals = await finish(run, h.clock);
    expect(h.starts[0]!.atMs).toBe(500);
    expect(run.state.startTimeMs - h.t0).toBe(500);
    expect(totals.iterationsStarted).toBe(10);
  });

  it('test abort stops everything: running iterations are interrupted at once and nothing more starts', async () => {
    const h = harness(10_000);
    const runs = [
      startScenario(scenario({ executor: 'constant-arrival-rate', rate: 10, duration: '1m', preAllocatedVUs: 100 }), h.deps, h.t0),
      startScenario(scenario({ executor: 'constant-vus', vus: 3, duration: '1m' }), h.deps, h.t0),
      startScenario(scenario({ executor: 'ramping-vus', stages: [{ duration: '1m', target: 5 }] }), h.deps, h.t0),
      startScenario(scenario({ executor: 'shared-iterations', vus: 2, iterations: 5, startTime: '10s' }), h.deps, h.t0),
    ];
    await h.clock.advance(1000);
    const startedBefore = h.starts.length;
    h.abort.abort();
    const totals = await Promise.all(runs.map((r) => r.done));
    expect(h.interruptedAtMs).toHaveLength(startedBefore);
    expect(h.interruptedAtMs.every((t) => t === 1000)).toBe(true);
    // Arrivals at 0, 100, …, 1000 ms (the one at 1000 came due before the abort), 3 and 1 looping VUs.
    expect(totals.map((t) => t.iterationsInterrupted)).toEqual([11, 3, 1, 0]);
    await h.clock.advance(60_000);
    expect(h.starts).toHaveLength(startedBefore);
    expect(h.pool.active()).toBe(0);
  });

  it('reports an exhausted iteration budget as an error instead of hanging', async () => {
    const h = harness(1);
    h.deps.iterationBudget = 1000;
    const run = startScenario(scenario({ executor: 'constant-vus', vus: 2, duration: '1s' }), h.deps, h.t0);
    const err = await finish(run, h.clock).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecutorBudgetError);
    expect((err as ExecutorBudgetError).code).toBe('SG_ERR_BUDGET_EXHAUSTED');
    expect(h.starts).toHaveLength(1000);
    expect(h.pool.active()).toBe(0);
  });

  it('reports a scenario that needs more VUs than the pool allows, and gives back the ones it took', async () => {
    const h = harness(100);
    h.deps.vus = new VuPool(2);
    const run = startScenario(scenario({ executor: 'constant-vus', vus: 3, duration: '1s' }), h.deps, h.t0);
    await expect(run.done).rejects.toThrow(/VU budget/);
    expect(h.deps.vus.active()).toBe(0);
  });

  it('reports iterations that take no time on a virtual clock instead of looping forever', async () => {
    const h = harness(0);
    const run = startScenario(scenario({ executor: 'constant-vus', vus: 1, duration: '1s' }), h.deps, h.t0);
    await expect(run.done).rejects.toThrow(/without the clock moving/);
    expect(h.starts).toHaveLength(10_000);
    expect(h.pool.active()).toBe(0);
  });
});

describe('VuPool', () => {
  it('hands out 1-based ids, reuses the lowest released one, and remembers the peak', () => {
    const pool = new VuPool();
    expect([pool.allocate(), pool.allocate(), pool.allocate()]).toEqual([1, 2, 3]);
    pool.release(3);
    pool.release(1);
    expect(pool.active()).toBe(1);
    expect(pool.allocate()).toBe(1);
    expect(pool.allocate()).toBe(3);
    expect(pool.allocate()).toBe(4);
    expect(pool.max()).toBe(4);
  });

  it('refuses a release of a VU it did not hand out, and a VU beyond its budget', () => {
    const pool = new VuPool(2);
    pool.allocate();
    expect(() => pool.release(7)).toThrow(/not allocated/);
    pool.allocate();
    expect(() => pool.allocate()).toThrow(/budget/);
  });
});

describe('on real time (short)', () => {
  it('keeps arrivals on schedule with batched timers: 500/s for 400 ms, no drift', async () => {
    const h = harness(2, new RealClock());
    // '2s' at speed 5 is 400 ms; 100/s at speed 5 is 500 per real second.
    const s = scenario({ executor: 'constant-arrival-rate', rate: 100, duration: '2s', preAllocatedVUs: 200, gracefulStop: '1s' }, { speed: 5 });
    const run = startScenario(s, h.deps, h.t0);
    const totals = await run.done;
    const elapsed = h.clock.nowMs() - h.t0;
    expect(totals.iterationsStarted + totals.dropped).toBe(200);
    expect(totals.dropped).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(700);
    // No drift: the last arrival (398 ms) starts close to its time, not 200 timer delays later.
    const last = h.starts[h.starts.length - 1]!;
    expect(last.intendedMs).toBeCloseTo(398, 6);
    expect(last.atMs - last.intendedMs).toBeLessThan(50);
    expect(sum(h.delays) / h.delays.length).toBeLessThan(10);
  });

  it('a closed loop whose iterations never wait still ends on time', async () => {
    const h = harness(0, new RealClock());
    const s = scenario({ executor: 'constant-vus', vus: 2, duration: '1s' }, { speed: 5 });
    const run = startScenario(s, h.deps, h.t0);
    const totals = await run.done;
    const elapsed = h.clock.nowMs() - h.t0;
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(elapsed).toBeLessThan(500);
    expect(totals.iterationsStarted).toBeGreaterThan(100);
    expect(totals.iterationsInterrupted).toBe(0);
  });
});
