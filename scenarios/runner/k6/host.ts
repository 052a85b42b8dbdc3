// What the k6 module shims need beyond runtime.ts: the registry and check recorder as the small
// interfaces they call, optional extras a runner may provide, and the shims' error codes.

import type { HttpClient } from '../http-client.ts';
import { getRuntime, type Runtime, type Tags, type VuState } from '../runtime.ts';

export type MetricType = 'counter' | 'gauge' | 'rate' | 'trend';
export type ValueKind = 'time' | 'data' | 'default';

/** A recorder bound to one metric. */
export interface MetricHandle {
  add(value: number, tags: Tags): void;
}

/** The part of `MetricRegistry` (scenarios/runner/k6-metrics.ts) the shims call. */
export interface MetricSink {
  define(name: string, type: MetricType, kind?: ValueKind): unknown;
  add(name: string, value: number, tags: Tags): void;
  /** Notes a metric the script declared (k6/metrics); optional. */
  markDeclared?(name: string): void;
  /** A bound recorder (skips the name lookup); optional, `add` serves without it. */
  metric?(name: string): MetricHandle;
}

/** The part of `CheckRecorder` (scenarios/runner/summary-export.ts) that `check()` calls. */
export interface CheckSink {
  record(groupPath: string[], name: string, ok: boolean): void;
  /** Registers a group that ran, so the summary lists groups without checks (as k6 does). */
  enterGroup?(groupPath: string[]): void;
}

/** A VU as the shims read it: runtime.ts's VuState plus fields the runner may add. */
export type VuExt = VuState & {
  /** This VU's iteration count within its current scenario, 0-based (k6's vu.iterationInScenario). */
  vuIterationInScenario?: number;
  /** VU id across all instances (k6's vu.idInTest); one instance, so it defaults to `id`. */
  idInTest?: number;
};

/** The Runtime as the shims read it: runtime.ts's Runtime plus optional services. */
export type RuntimeExt = Runtime & {
  checks: CheckSink;
  /** k6/execution `test.fail(message)`: mark the run failed and keep going. */
  fail?(message: string): void;
  /** The transport k6/http uses; absent, k6/http makes one per Runtime (see `closeHttpClient`). */
  httpClient?: HttpClient;
};

export function runtimeExt(): RuntimeExt {
  return getRuntime() as RuntimeExt;
}

/** The installed Runtime, or null (init code evaluated outside a run, export-k6). */
export function peekRuntime(): RuntimeExt | null {
  try {
    return getRuntime() as RuntimeExt;
  } catch {
    return null;
  }
}

export function sink(rt: Runtime = getRuntime()): MetricSink {
  return rt.registry as unknown as MetricSink;
}

/**
 * Defines a set of metrics once per registry. The built-in k6 metrics the shims emit (http_*,
 * checks, group_duration, data_*) are declared by the shim that emits them, so a registry needs no
 * list of k6 built-ins to accept them.
 */
export function defineOnce(rt: Runtime, key: string, defs: ReadonlyArray<readonly [string, MetricType, ValueKind]>): void {
  let done = defined.get(rt.registry as object);
  if (!done) defined.set(rt.registry as object, (done = new Set()));
  if (done.has(key)) return;
  const reg = sink(rt);
  for (const [name, type, kind] of defs) reg.define(name, type, kind);
  done.add(key);
}

const defined = new WeakMap<object, Set<string>>();

const handleSets = new WeakMap<object, Map<string, Record<string, MetricHandle>>>();

/**
 * Defines `defs` once per registry and returns a recorder per metric, bound once per registry:
 * k6/http records eleven samples per request, so the hot path skips the registry's name lookups.
 */
export function metricHandles<const N extends string>(rt: Runtime, key: string, defs: ReadonlyArray<readonly [N, MetricType, ValueKind]>): Record<N, MetricHandle> {
  const registry = rt.registry as object;
  let sets = handleSets.get(registry);
  if (!sets) handleSets.set(registry, (sets = new Map()));
  let set = sets.get(key);
  if (!set) {
    defineOnce(rt, key, defs);
    const reg = sink(rt);
    set = {};
    for (const [name] of defs) set[name] = reg.metric ? reg.metric(name) : { add: (value, tags) => reg.add(name, value, tags) };
    sets.set(key, set);
  }
  return set as Record<N, MetricHandle>;
}

/** The shims' error codes: tests and the runner tell errors apart by code, never by wording. */
export const SHIM_ERRORS = {
  /** A k6 module Scalegram's runner does not implement (k6/ws, k6/browser, extensions …). */
  UNSUPPORTED_MODULE: 'SG_K6_UNSUPPORTED_MODULE',
  /** A k6 feature inside a supported module that is not implemented (cookies, digest auth …). */
  UNSUPPORTED: 'SG_K6_UNSUPPORTED',
  /** A promise reached an API that needs a value: the script forgot an `await`. */
  NOT_AWAITED: 'SG_K6_NOT_AWAITED',
  /** Something allowed only in init code (new Trend, open) ran in VU code, or the reverse. */
  WRONG_CONTEXT: 'SG_K6_WRONG_CONTEXT',
  /** A bad argument (metric name, group name with '::', timeout string …). */
  BAD_ARGUMENT: 'SG_K6_BAD_ARGUMENT',
  /** A transport error with params.throw (or options.throw) set. */
  REQUEST_FAILED: 'SG_K6_REQUEST_FAILED',
  /** `fail()` from k6: the script ended its iteration on purpose. */
  FAIL: 'SG_K6_FAIL',
  /** `exec.test.abort()`: the script ended the whole run. */
  TEST_ABORTED: 'SG_K6_TEST_ABORTED',
} as const;

export type ShimErrorCode = (typeof SHIM_ERRORS)[keyof typeof SHIM_ERRORS];

/** An Error carrying a stable code from SHIM_ERRORS. */
export class K6ShimError extends Error {
  readonly code: ShimErrorCode;
  constructor(code: ShimErrorCode, message: string) {
    super(message);
    this.name = 'K6ShimError';
    this.code = code;
  }
}
