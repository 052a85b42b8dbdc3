// 'k6/metrics' for Scalegram's runner: Counter, Gauge, Rate and Trend. Constructed in init code they
// declare the metric in the run's registry; `add(value, tags)` records a sample with the VU's tags.

import { currentVu, sampleTags, type Tags } from '../runtime.ts';
import { defineOnce, K6ShimError, peekRuntime, runtimeExt, SHIM_ERRORS, sink, type MetricType, type ValueKind } from './host.ts';

export abstract class Metric {
  readonly name: string;
  private readonly type: MetricType;
  private readonly kind: ValueKind;

  protected constructor(name: string, type: MetricType, isTime: boolean) {
    // The registry applies k6's naming rule when the metric is declared.
    if (typeof name !== 'string' || name === '') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `a metric needs a name, got ${JSON.stringify(name)}`);
    if (currentVu()) throw new K6ShimError(SHIM_ERRORS.WRONG_CONTEXT, `metric ${name}: custom metrics must be created in init code (module scope), as in k6`);
    this.name = name;
    this.type = type;
    this.kind = isTime ? 'time' : 'default';
    // Init code may be evaluated before a run exists (export-k6, a test importing the script);
    // then the metric is declared on its first add.
    const rt = peekRuntime();
    if (rt) this.declare(rt);
  }

  /** Records `value` (true/false count as 1/0) with the VU's tags, overridden by `tags`. Returns true, as k6. */
  add(value: number | boolean, tags?: Record<string, string | number | boolean>): boolean {
    const v = typeof value === 'boolean' ? (value ? 1 : 0) : Number(value);
    if (Number.isNaN(v)) throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `${this.name}.add(): ${JSON.stringify(value)} is not a number`);
    const rt = runtimeExt();
    this.declare(rt);
    let extra: Tags | undefined;
    if (tags) {
      extra = {};
      for (const k in tags) extra[k] = String(tags[k]);
    }
    sink(rt).add(this.name, this.type === 'rate' ? (v !== 0 ? 1 : 0) : v, sampleTags(extra));
    return true;
  }

  /** The registry this metric was last declared in (a sample's add() then skips declaring). */
  private declaredIn: object | null = null;

  private declare(rt: NonNullable<ReturnType<typeof peekRuntime>>): void {
    if (this.declaredIn === rt.registry) return;
    defineOnce(rt, `metric:${this.name}`, [[this.name, this.type, this.kind]]);
    sink(rt).markDeclared?.(this.name);
    this.declaredIn = rt.registry;
  }
}

/** A sum (k6: count and rate per second). */
export class Counter extends Metric {
  constructor(name: string, isTime = false) {
    super(name, 'counter', isTime);
  }
}

/** The last value (k6: value, min, max). */
export class Gauge extends Metric {
  constructor(name: string, isTime = false) {
    super(name, 'gauge', isTime);
  }
}

/** The share of non-zero values (k6: rate, passes, fails). */
export class Rate extends Metric {
  constructor(name: string, isTime = false) {
    super(name, 'rate', isTime);
  }
}

/** A distribution (k6: avg, min, med, max, p(90), p(95)); `isTime` marks the values as ms. */
export class Trend extends Metric {
  constructor(name: string, isTime = false) {
    super(name, 'trend', isTime);
  }
}

export default { Counter, Gauge, Rate, Trend };
