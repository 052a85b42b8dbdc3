// Starts the photo service in a worker thread (server/thread.ts) and stops it, for `scalegram run`:
// the runner then shares no event loop with the server, and each side's loop delay is its own.

import { Worker } from 'node:worker_threads';
import type { ServerThreadData, ServerThreadMessage } from '../../server/thread.ts';

export interface ServerThread {
  /** Closes the server and its topology; resolves to the server loop's delay over the run (ms). */
  stop(): Promise<{ p50: number; p99: number; max: number } | null>;
}

/** A server thread that failed to start: its error's message, and its code (e.g. SG_ERR_CONFIG_INVALID) when it had one. */
export class ServerThreadError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
  }
}

export function startServerThread(data: ServerThreadData): Promise<ServerThread> {
  const worker = new Worker(new URL('../../server/thread-entry.mjs', import.meta.url), { workerData: data });
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new ServerThreadError(`the server thread exited (${code}) before it listened`, null));
    worker.once('error', reject);
    worker.once('exit', onExit);
    worker.once('message', (m: ServerThreadMessage) => {
      worker.off('error', reject);
      worker.off('exit', onExit);
      if (m.type === 'failed') {
        void worker.terminate();
        reject(new ServerThreadError(m.message, m.code));
        return;
      }
      resolve({ stop: () => stopThread(worker) });
    });
  });
}

function stopThread(worker: Worker): Promise<{ p50: number; p99: number; max: number } | null> {
  return new Promise((resolve) => {
    let delay: { p50: number; p99: number; max: number } | null = null;
    // A thread that does not answer in 30 s is terminated; its delay is then unknown.
    const timer = setTimeout(() => void worker.terminate(), 30_000);
    worker.on('message', (m: ServerThreadMessage) => {
      if (m.type !== 'stopped') return;
      delay = m.eventLoopDelayMs;
      void worker.terminate();
    });
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve(delay);
    });
    worker.once('error', () => undefined);
    worker.postMessage({ type: 'stop' });
  });
}
