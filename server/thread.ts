// The photo service in a worker thread of its own: what `scalegram run` starts by default, so the
// load generator's event loop and the server's (with its topology) no longer share one thread. It
// builds the topology from the config it is given, serves it on 127.0.0.1:port, measures its own
// event loop's delay, and reports it when told to stop. scenarios/runner/server-thread.ts drives it.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { isSimError } from '../sim/engine/errors.ts';
import { serveTopology, type ServeOptions } from './serve-topology.ts';

export type ServerThreadData = ServeOptions;

/** What the thread posts: ready (listening), failed (with the error's code when it has one), stopped (with its loop's delay, ms). */
export type ServerThreadMessage =
  | { type: 'ready' }
  | { type: 'failed'; message: string; code: string | null }
  | { type: 'stopped'; eventLoopDelayMs: { p50: number; p99: number; max: number } };

const round1 = (v: number) => Math.round(v * 10) / 10;

async function main(): Promise<void> {
  const port = parentPort!;
  const data = workerData as ServerThreadData;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  let served: Awaited<ReturnType<typeof serveTopology>>;
  try {
    served = await serveTopology(data);
  } catch (e) {
    const code = isSimError(e) ? e.code : null;
    // A refused config is the user's to fix (its message names the field); anything else is a crash, with its stack.
    const message = isSimError(e) ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    port.postMessage({ type: 'failed', message, code } satisfies ServerThreadMessage);
    return;
  }
  loopDelay.enable();
  port.postMessage({ type: 'ready' } satisfies ServerThreadMessage);
  port.once('message', (m: { type: 'stop' }) => {
    if (m.type !== 'stop') return;
    loopDelay.disable();
    const eventLoopDelayMs = { p50: round1(loopDelay.percentile(50) / 1e6), p99: round1(loopDelay.percentile(99) / 1e6), max: round1(loopDelay.max / 1e6) };
    void (async () => {
      await served.close().catch(() => undefined);
      port.postMessage({ type: 'stopped', eventLoopDelayMs } satisfies ServerThreadMessage);
    })();
  });
}

await main();
