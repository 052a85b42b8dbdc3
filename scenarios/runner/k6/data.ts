// 'k6/data' for Scalegram's runner: SharedArray. k6 shares one copy between VUs that run in separate
// JS runtimes; here all VUs share one process, so it is the callback's array, frozen.

import { K6ShimError, SHIM_ERRORS } from './host.ts';

export class SharedArray<T = unknown> {
  constructor(name: string, fn: () => T[]) {
    if (typeof name !== 'string' || name === '') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, 'SharedArray needs a non-empty name');
    const data = fn();
    if (!Array.isArray(data)) throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `SharedArray ${name}: the function must return an array`);
    // A constructor that returns an object makes `new` yield it: indexing and length work as on k6's.
    return Object.freeze(data) as unknown as SharedArray<T>;
  }
}

export default { SharedArray };
