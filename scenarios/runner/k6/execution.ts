// 'k6/execution' for Scalegram's runner: `vu`, `scenario`, `instance` and `test`, each an object of
// getters read at access time from the current VU scope and the Runtime (one instance per test here).

import { currentVu, type Tags } from '../runtime.ts';
import { K6ShimError, runtimeExt, SHIM_ERRORS, type VuExt } from './host.ts';

function needVu(what: string): VuExt {
  const vu = currentVu() as VuExt | undefined;
  if (!vu) throw new K6ShimError(SHIM_ERRORS.WRONG_CONTEXT, `exec.${what} is only available in VU code (not in init code, setup or teardown)`);
  return vu;
}

/**
 * The VU of a scenario: setup and teardown run outside any scenario (the runner gives them a VU
 * whose scenario has no name), where k6 refuses exec.scenario.
 */
function needScenarioVu(what: string): VuExt {
  const vu = needVu(what);
  if (vu.scenario.name === '') throw new K6ShimError(SHIM_ERRORS.WRONG_CONTEXT, 'getting scenario information outside of the VU context is not supported');
  return vu;
}

type TagValue = string | number | boolean;

/**
 * k6's vu.tags: writes set VU-level tags carried by every later sample of this VU (values become
 * strings; objects are refused, as in k6); reads fall back to the scenario's tags.
 */
function tagsView(vu: VuExt): Record<string, TagValue> {
  return new Proxy(vu.tags as Record<string, TagValue>, {
    get(target, key) {
      if (typeof key !== 'string') return undefined;
      return key in target ? target[key] : vu.scenario.tags[key];
    },
    set(target, key, value: unknown) {
      if (typeof key !== 'string') return false;
      if (value === null || (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')) {
        throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `vu.tags.${key}: only string, number and boolean values can be tags`);
      }
      (target as Tags)[key] = String(value);
      return true;
    },
    has(target, key) {
      return typeof key === 'string' && (key in target || key in vu.scenario.tags);
    },
  });
}

/** Per-VU metadata (k6: attached to samples but not indexed); kept per VU tag set, which lives as long as the VU. */
const metadata = new WeakMap<object, Record<string, TagValue>>();

export const vu = {
  get idInInstance(): number {
    return needVu('vu.idInInstance').id;
  },
  get idInTest(): number {
    const v = needVu('vu.idInTest');
    return v.idInTest ?? v.id;
  },
  get iterationInInstance(): number {
    return needVu('vu.iterationInInstance').iterationInInstance;
  },
  /** This VU's iterations in its scenario; until the runner reports it, the VU's count across the test (equal when a VU serves one scenario). */
  get iterationInScenario(): number {
    const v = needVu('vu.iterationInScenario');
    return v.vuIterationInScenario ?? v.iterationInInstance;
  },
  get tags(): Record<string, TagValue> {
    return tagsView(needVu('vu.tags'));
  },
  get metrics(): { tags: Record<string, TagValue>; metadata: Record<string, TagValue> } {
    const v = needVu('vu.metrics');
    let meta = metadata.get(v.tags);
    if (!meta) metadata.set(v.tags, (meta = {}));
    return { tags: tagsView(v), metadata: meta };
  },
};

export const scenario = {
  get name(): string {
    return needScenarioVu('scenario.name').scenario.name;
  },
  get executor(): string {
    return needScenarioVu('scenario.executor').scenario.executor;
  },
  /** Unix ms when the scenario started. */
  get startTime(): number {
    return needScenarioVu('scenario.startTime').scenario.startTimeMs;
  },
  /** 0..1 of the scenario's planned duration or iterations. */
  get progress(): number {
    return needScenarioVu('scenario.progress').scenario.progress();
  },
  get iterationInInstance(): number {
    return needScenarioVu('scenario.iterationInInstance').iterationInScenario;
  },
  /** One instance, so the same as iterationInInstance. */
  get iterationInTest(): number {
    return needScenarioVu('scenario.iterationInTest').iterationInScenario;
  },
};

export const instance = {
  get iterationsCompleted(): number {
    return runtimeExt().stats().iterationsCompleted;
  },
  get iterationsInterrupted(): number {
    return runtimeExt().stats().iterationsInterrupted;
  },
  get vusActive(): number {
    return runtimeExt().stats().vusActive;
  },
  get vusInitialized(): number {
    return runtimeExt().stats().vusInitialized;
  },
  /** ms since the run started. */
  get currentTestRunDuration(): number {
    return runtimeExt().stats().currentTestRunDurationMs;
  },
};

export const test = {
  /** Ends the whole run (the runner exits 108, as k6) and stops the calling iteration by throwing. */
  abort(reason?: string): never {
    const message = reason ?? 'test aborted by the script';
    runtimeExt().abort(message);
    throw new K6ShimError(SHIM_ERRORS.TEST_ABORTED, `test aborted: ${message}`);
  },
  /** Marks the run failed and carries on (k6 ≥ 0.48's exec.test.fail). */
  fail(message?: string): void {
    const rt = runtimeExt();
    if (!rt.fail) throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'exec.test.fail() needs a runner that supports it');
    rt.fail(message ?? 'test marked failed by the script');
  },
  /** The run's options, as the runner resolved them. */
  get options(): unknown {
    return runtimeExt().options;
  },
};

export default { vu, scenario, instance, test };
