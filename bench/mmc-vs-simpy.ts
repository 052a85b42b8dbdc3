// The engine's speed on an M/M/c queue (λ=8, μ=1, c=10) in customers per second, beside SimPy 2.3's
// on the same model in the same run (bench/mmc_simpy.py) when SimPy is installed.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mmcMeanWait, runMmc } from './mmc.ts';

export const MMC = { lambda: 8, mu: 1, servers: 10 } as const;

export interface MmcSide {
  customersPerS: number;
  meanWait: number;
  /** Rounds measured; customersPerS is the median over them. */
  runs: number;
}

export interface MmcBench {
  customers: number;
  /** Erlang C / (cμ − λ). */
  analyticWait: number;
  /** Warm: the median of rounds after two warm-up runs. */
  engine: MmcSide;
  /** The engine's very first run, JIT warm-up included (customers/s). */
  engineColdFirstRun: number;
  /** null when SimPy 2.3 cannot be imported by any python3 found. */
  simpy: MmcSide | null;
  /** Why SimPy was skipped (when it was). */
  simpySkipped: string | null;
  python: string | null;
}

const SIMPY_SCRIPT = fileURLToPath(new URL('./mmc_simpy.py', import.meta.url));

/** The first python3 that can import SimPy.Simulation (a pyenv shim may hide Debian's). */
export function findSimpyPython(): string | null {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import SimPy.Simulation'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;

export function benchMmc(customers = 200_000, opts: { rounds?: number; seed?: number } = {}): MmcBench {
  const seed = opts.seed ?? 1;
  const rounds = opts.rounds ?? 3;
  const python = findSimpyPython();
  const engineRates: number[] = [];
  const simpyRates: number[] = [];
  let engineWait = 0;
  let simpyWait = 0;
  const engineRun = (): number => {
    const r = runMmc({ ...MMC, customers, seed });
    engineWait = r.meanWait;
    return r.customers / (r.wallMs / 1000);
  };
  // The same seed every time: the same customers, so runs differ only in speed. The engine's first
  // runs include the JIT's warm-up (a long simulation runs warm); the cold first run is kept apart.
  const coldFirstRun = engineRun();
  engineRun();
  // Rounds alternate the two, so a change in the machine's load falls on both; each engine round is
  // the median of three runs (one run of 200,000 customers takes some 20 ms).
  for (let i = 0; i < rounds; i++) {
    engineRates.push(median([engineRun(), engineRun(), engineRun()]));
    if (python) {
      const r = spawnSync(python, [SIMPY_SCRIPT, String(customers), String(seed), String(MMC.lambda), String(MMC.mu), String(MMC.servers)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`bench/mmc_simpy.py failed (exit ${r.status}): ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { customers: number; meanWait: number; perS: number };
      simpyRates.push(out.perS);
      simpyWait = out.meanWait;
    }
  }
  return {
    customers,
    analyticWait: mmcMeanWait(MMC.servers, MMC.lambda, MMC.mu),
    engine: { customersPerS: median(engineRates), meanWait: engineWait, runs: rounds },
    engineColdFirstRun: coldFirstRun,
    simpy: python ? { customersPerS: median(simpyRates), meanWait: simpyWait, runs: rounds } : null,
    simpySkipped: python ? null : 'SimPy 2.3 is not installed (no python3 can import SimPy.Simulation); on Debian: apt-get install python3-simpy',
    python,
  };
}
