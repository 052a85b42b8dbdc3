// 'k6/data' for Scalegram's runner: SharedArray. k6 calls the callback once, in the first VU to
// construct the array, and shares the one frozen copy between all VUs; here each VU evaluates the
// script's init code too (script-loader.ts), so the array is kept per run by name and handed out
// again to every later VU.

import { K6ShimError, peekRuntime, SHIM_ERRORS } from './host.ts';

/** Arrays made in a run, by name (keyed by the run's registry, so each run starts empty). */
const shared = new WeakMap<object, Map<string, readonly unknown[]>>();

export class SharedArray<T = unknown> {
  constructor(name: string, fn: () => T[]) {
    if (typeof name !== 'string' || name === '') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, 'SharedArray needs a non-empty name');
    if (typeof fn !== 'function') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `SharedArray ${name}: the second argument must be a function that returns an array`);
    const rt = peekRuntime();
    const byName = rt ? (shared.get(rt.registry) ?? shared.set(rt.registry, new Map()).get(rt.registry)!) : null;
    const known = byName?.get(name);
    if (known) return known as unknown as SharedArray<T>;
    const data = fn();
    if (!Array.isArray(data)) throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `SharedArray ${name}: the function must return an array`);
    // A constructor that returns an object makes `new` yield it: indexing and length work as on k6's.
    const frozen = Object.freeze(data);
    byName?.set(name, frozen);
    return frozen as unknown as SharedArray<T>;
  }
}

export default { SharedArray };
