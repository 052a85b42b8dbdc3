// Memory per VU of the runner: how much a VU costs once its module is evaluated (script-loader.ts
// runs the script's init code per VU, as k6 does) and it has an iteration in flight. Loads a script,
// makes N VUs, starts one iteration on each at once against a bare route in its own process, and
// measures RSS and heap before and after, each after a full GC. k6's figure: about 1–5 MB per VU.
//
//   node --expose-gc --import tsx bench/vu-memory.ts [--vus 1000] [--script bench/scripts/get-sync.js]
// Prints one JSON line: { vus, script, rssPerVuMB, heapPerVuMB, inFlight }.

import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { setRuntime, vuStorage, type VuState } from '../scenarios/runner/runtime.ts';
import { loadScript } from '../scenarios/runner/script-loader.ts';
import { BENCH_SCRIPTS, installBenchRuntime, startBareTarget } from './runner-http.ts';

export interface VuMemory {
  vus: number;
  script: string;
  rssPerVuMB: number;
  heapPerVuMB: number;
  /** Iterations that were in flight at once (each VU's one). */
  inFlight: number;
}

const gc = (globalThis as { gc?: () => void }).gc;

async function settle(): Promise<{ rss: number; heap: number }> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

export async function measureVuMemory(opts: { vus: number; script: string }): Promise<VuMemory> {
  if (!gc) throw new Error('run with node --expose-gc');
  const target = await startBareTarget();
  const { client, scenario } = installBenchRuntime(`${target.address}/`, opts.vus);
  const signal = new AbortController().signal;
  try {
    const script = loadScript(opts.script);
    // One VU first: the compiled script, the shims and the HTTP client's code are not a VU's cost.
    const first = script.module(1).default as () => unknown;
    const state = (id: number): VuState => ({ id, iterationInInstance: 0, iterationInScenario: 0, scenario, tags: {}, groups: [], intendedStartMs: Date.now(), startMs: Date.now(), signal });
    await vuStorage.run(state(1), first);
    const before = await settle();
    let inFlight = 0;
    let peak = 0;
    const runs: Array<Promise<unknown>> = [];
    for (let id = 2; id <= opts.vus + 1; id++) {
      const fn = script.module(id).default as () => unknown;
      inFlight++;
      peak = Math.max(peak, inFlight);
      runs.push(Promise.resolve(vuStorage.run(state(id), fn)).finally(() => inFlight--));
    }
    await Promise.all(runs);
    const after = await settle();
    const mb = (bytes: number) => bytes / opts.vus / 2 ** 20;
    return { vus: opts.vus, script: opts.script, rssPerVuMB: mb(after.rss - before.rss), heapPerVuMB: mb(after.heap - before.heap), inFlight: peak };
  } finally {
    await client.close();
    setRuntime(null);
    target.child.kill('SIGTERM');
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { vus: { type: 'string', default: '1000' }, script: { type: 'string', default: BENCH_SCRIPTS.sync } } });
  const r = await measureVuMemory({ vus: Number(values.vus), script: values.script! });
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}
