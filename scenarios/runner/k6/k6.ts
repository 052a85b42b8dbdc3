// 'k6' for Scalegram's runner: check, group, sleep, fail, randomSeed. Requests are asynchronous on
// Node, so sleep returns a Promise, group awaits an async body, and check refuses an un-awaited one.

import { setTimeout as delay } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { Prng } from '../../../sim/engine/prng.ts';
import { currentVu, sampleTags, vuStorage, type Tags, type VuState } from '../runtime.ts';
import { defineOnce, K6ShimError, peekRuntime, runtimeExt, SHIM_ERRORS, sink, type VuExt } from './host.ts';

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

function stringTags(tags: unknown): Tags | undefined {
  if (tags === undefined || tags === null) return undefined;
  if (typeof tags !== 'object') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, 'tags must be an object');
  const out: Tags = {};
  for (const [k, v] of Object.entries(tags)) out[k] = String(v);
  return out;
}

function checkName(kind: 'group' | 'check', name: unknown): string {
  if (typeof name !== 'string') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `${kind} name must be a string`);
  // k6 joins group paths with '::', so a name containing it would forge a path.
  if (name.includes('::')) throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `${kind} and check names may not contain '::' (got ${JSON.stringify(name)})`);
  return name;
}

const NOT_AWAITED =
  'the value comes from a request the runner could not make wait (a function reached through a Map, ' +
  'a variable or a package; README: Bring your own k6 script); write that call with await ' +
  '(`const res = await http.get(url)`; under k6 the await is a no-op)';

/**
 * Runs each named check on `value` and records a `checks` sample (1 pass, 0 fail) tagged with
 * `check: name`, plus the pass/fail in the run's check tree. Returns true when all passed.
 */
export function check<T>(value: T, sets: Record<string, ((v: T) => unknown) | boolean>, tags?: Record<string, unknown>): boolean {
  const rt = runtimeExt();
  defineOnce(rt, 'checks', [['checks', 'rate', 'default']]);
  const reg = sink(rt);
  const vu = currentVu();
  const extra = stringTags(tags);
  if (isThenable(value)) {
    // Every check fails (so a `checks` threshold cannot pass on checks that never ran), then the
    // iteration stops with the reason; the promise's own outcome is not an unhandled rejection.
    Promise.resolve(value).catch(() => undefined);
    for (const name of Object.keys(sets)) {
      const t = sampleTags(extra);
      t.check = checkName('check', name);
      reg.add('checks', 0, t);
      rt.checks.record(vu ? vu.groups : [], name, false);
    }
    throw new K6ShimError(SHIM_ERRORS.NOT_AWAITED, `check() was given a Promise (${SHIM_ERRORS.NOT_AWAITED}): ${NOT_AWAITED}`);
  }
  let all = true;
  for (const name of Object.keys(sets)) {
    checkName('check', name);
    const c = sets[name];
    const result = typeof c === 'function' ? (c as (v: T) => unknown)(value) : c;
    if (isThenable(result)) throw new K6ShimError(SHIM_ERRORS.NOT_AWAITED, `check ${JSON.stringify(name)} returned a Promise: checks are synchronous; ${NOT_AWAITED}`);
    const ok = Boolean(result);
    const t = sampleTags(extra);
    t.check = name;
    reg.add('checks', ok ? 1 : 0, t);
    rt.checks.record(vu ? vu.groups : [], name, ok);
    if (!ok) all = false;
  }
  return all;
}

/**
 * Runs `fn` inside a group: samples inside carry `group: '::outer::name'`, and `group_duration`
 * (ms) is recorded when `fn` returns or, when it returns a promise, when that settles. The group
 * path lives in a child scope of the VU (a VuState whose `groups` is its own, the rest inherited),
 * so concurrent async groups in one iteration cannot tag each other's samples. Outside a VU
 * (setup, teardown) `fn` runs ungrouped.
 */
export function group<T>(name: string, fn: () => T): T {
  checkName('group', name);
  if (typeof fn !== 'function') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, 'group() needs a function');
  const vu = currentVu();
  if (!vu) return fn();
  const rt = runtimeExt();
  defineOnce(rt, 'group', [['group_duration', 'trend', 'time']]);
  const path = [...vu.groups, name];
  const scoped: VuState = Object.create(vu, { groups: { value: path, enumerable: true } });
  rt.checks.enterGroup?.(path);
  const t0 = performance.now();
  const end = (): void => {
    sink(rt).add('group_duration', performance.now() - t0, vuStorage.run(scoped, () => sampleTags()));
  };
  const result = vuStorage.run(scoped, fn);
  if (isThenable(result)) {
    return Promise.resolve(result).finally(end) as T;
  }
  end();
  return result;
}

/**
 * Waits `seconds` of script time: seconds / runtime.speed of real time. Returns a Promise (await
 * it); rejects when the VU's iteration is interrupted.
 */
export function sleep(seconds: number): Promise<void> {
  const s = Number(seconds);
  if (Number.isNaN(s)) throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `sleep() needs a number of seconds, got ${JSON.stringify(seconds)}`);
  const speed = peekRuntime()?.speed ?? 1;
  const ms = Math.max(0, (s * 1000) / speed);
  const signal = (currentVu() as VuExt | undefined)?.signal;
  return signal ? abortableDelay(ms, signal) : delay(ms);
}

interface PendingSleep {
  timer: NodeJS.Timeout;
  reject: (reason: unknown) => void;
}

/**
 * Sleeping VUs per signal, woken together when it aborts. One listener per signal rather than one
 * per sleep: a scenario's VUs may share a signal, and thousands of listeners on one EventTarget are
 * slow to remove (and warn past ten).
 */
const sleepers = new WeakMap<AbortSignal, Set<PendingSleep>>();

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  let set = sleepers.get(signal);
  if (!set) {
    const s = (set = new Set());
    sleepers.set(signal, s);
    signal.addEventListener('abort', () => {
      for (const p of s) {
        clearTimeout(p.timer);
        p.reject(signal.reason);
      }
      s.clear();
    }, { once: true });
  }
  const pending = set;
  return new Promise<void>((resolve, reject) => {
    const p: PendingSleep = {
      timer: setTimeout(() => {
        pending.delete(p);
        resolve();
      }, ms),
      reject,
    };
    pending.add(p);
  });
}

/** Ends the iteration with an error (k6's fail). */
export function fail(err?: string): never {
  throw new K6ShimError(SHIM_ERRORS.FAIL, err ?? '');
}

const seeded = new Map<number, Prng>();

/**
 * k6 seeds the VU's Math.random. Here Math.random is shared by the whole process, so this seeds a
 * per-VU generator (per VU id; id 0 for init code) that `vuRandom()` reads — and nothing else.
 * Reproducible scripts take their seed from __ENV (the runner's --seed) and use their own generator.
 */
export function randomSeed(seed: number): void {
  seeded.set(currentVu()?.id ?? 0, new Prng(Number(seed)));
}

/** The generator randomSeed() seeded for the current VU, as a float in [0, 1); Math.random() when unseeded. */
export function vuRandom(): number {
  const prng = seeded.get(currentVu()?.id ?? 0);
  return prng ? prng.next() : Math.random();
}

export default { check, group, sleep, fail, randomSeed };
