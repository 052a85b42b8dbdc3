// How a k6 script finds Scalegram's k6: a resolve hook maps 'k6', 'k6/http' … to the shims beside
// this file, and installGlobals() provides k6's globals (__VU, __ITER, __ENV, open) on globalThis.

import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentVu } from '../runtime.ts';
import { K6ShimError, peekRuntime, SHIM_ERRORS } from './host.ts';

let registered = false;

/**
 * Registers the resolve hook (module.register, Node ≥ 20.6) for every later import in this process.
 * The hook is TypeScript, so tsx's loader must already be registered — as it is under
 * bin/scalegram.mjs and `node --import tsx`. Idempotent.
 */
export function registerK6Modules(): void {
  if (registered) return;
  if (typeof nodeModule.register !== 'function') {
    throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, `Scalegram's runner needs Node ≥ 20.6 (module.register); this is ${process.version}`);
  }
  nodeModule.register('./resolve-hook.ts', import.meta.url);
  registered = true;
}

const THIS_FILE = fileURLToPath(import.meta.url);

/** The file of the code that called open(): k6 resolves a relative path against it. */
function callerFile(): string | null {
  const lines = (new Error().stack ?? '').split('\n');
  for (const line of lines.slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^\s()]+?):\d+:\d+\)?\s*$/.exec(line);
    if (!m) continue;
    const file = m[1]!.startsWith('file:') ? fileURLToPath(m[1]!) : m[1]!;
    if (file !== THIS_FILE) return file;
  }
  return null;
}

/** Files open() has read in a run, by path (keyed by the run's registry, so each run reads afresh). */
const opened = new WeakMap<object, Map<string, Buffer>>();

/** k6's open(): a file's contents in init code, as text or (mode 'b') an ArrayBuffer. */
function open(filePath: string, mode?: 'b'): string | ArrayBuffer {
  if (currentVu()) throw new K6ShimError(SHIM_ERRORS.WRONG_CONTEXT, `open(${JSON.stringify(filePath)}) is only available in init code (module scope), as in k6`);
  if (mode !== undefined && mode !== 'b') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `open(): mode must be 'b' or absent, got ${JSON.stringify(mode)}`);
  const from = callerFile();
  const path = isAbsolute(filePath) ? filePath : resolvePath(from ? dirname(from) : process.cwd(), filePath);
  // Every VU runs the init code (script-loader.ts), so a run reads each file once and hands each VU
  // its own copy (k6's VUs each get theirs: an ArrayBuffer a script writes into is not shared).
  const rt = peekRuntime();
  const files = rt ? (opened.get(rt.registry) ?? opened.set(rt.registry, new Map()).get(rt.registry)!) : null;
  const data = files?.get(path) ?? readFileSync(path);
  files?.set(path, data);
  if (mode !== 'b') return data.toString('utf8');
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

/**
 * Defines k6's globals as getters on globalThis: __VU (the VU id, 0 in init code), __ITER (the VU's
 * iteration, 0 outside one), __ENV (the run's env, else process.env) and open(). Re-installable.
 */
export function installGlobals(): void {
  Object.defineProperty(globalThis, '__VU', { get: () => currentVu()?.id ?? 0, configurable: true });
  Object.defineProperty(globalThis, '__ITER', { get: () => currentVu()?.iterationInInstance ?? 0, configurable: true });
  // Inside an iteration, a scenario's `env` wins over the run's (as in k6); elsewhere, the run's.
  Object.defineProperty(globalThis, '__ENV', { get: () => currentVu()?.scenario.env ?? peekRuntime()?.env ?? process.env, configurable: true });
  Object.defineProperty(globalThis, 'open', { value: open, writable: true, configurable: true });
}
