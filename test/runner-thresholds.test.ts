// Thresholds in k6's grammar: a table of expressions with their verdicts on known data, the
// configuration errors (by code and field), sub-metric keys, abortOnFail with delayAbortEval.

import { describe, expect, it } from 'vitest';
import { MetricRegistry } from '../scenarios/runner/k6-metrics.ts';
import { parseDuration, parseThreshold, ThresholdError, Thresholds, type ThresholdConfig } from '../scenarios/runner/thresholds.ts';

const T0 = 1_700_000_000_000;

/** http_req_duration 1..100 ms, http_req_failed 1 of 4, dropped_iterations 1, vus last 7. */
function knownData(): MetricRegistry {
  const r = new MetricRegistry(() => T0);
  for (let i = 1; i <= 100; i++) r.add('http_req_duration', i, {});
  for (const v of [0, 1, 0, 0]) r.add('http_req_failed', v, {});
  r.add('dropped_iterations', 1, {});
  for (const v of [3, 9, 7]) r.add('vus', v, {});
  return r;
}

function verdict(metric: string, expression: string, elapsedMs = 20_000): boolean {
  const t = new Thresholds({ [metric]: [expression] }, knownData());
  return t.evaluate(elapsedMs).results[0]!.ok;
}

function configError(config: unknown): { code: string; field: string } | string {
  try {
    new Thresholds(config as ThresholdConfig, knownData());
  } catch (e) {
    if (e instanceof ThresholdError) return { code: e.code, field: e.field };
    return `not a ThresholdError: ${String(e)}`;
  }
  return 'no error';
}

describe('threshold expressions and their verdicts', () => {
  it.each([
    // trend of 1..100 ms: k6 gives avg 50.5, med 50.5, p(90) 90.1, p(95) 95.05, max 100
    ['http_req_duration', 'p(95)<96', true],
    ['http_req_duration', 'p(95)<90', false],
    ['http_req_duration', 'avg==50.5', true],
    ['http_req_duration', 'avg===50.5', true],
    ['http_req_duration', 'avg!=50.5', false],
    ['http_req_duration', '  avg  !=  50  ', true],
    ['http_req_duration', 'med<=50.5', true],
    ['http_req_duration', 'med<50', false],
    ['http_req_duration', 'max<100', false],
    ['http_req_duration', 'max<=100', true],
    ['http_req_duration', 'min>=1', true],
    ['http_req_duration', 'min>1', false],
    ['http_req_duration', 'p(90)>=90.5', false],
    ['http_req_duration', 'p(90) > 90', true],
    ['http_req_duration', 'p(99.9)<100', true],
    ['http_req_duration', 'p(100)==100', true],
    ['http_req_duration', 'p( 0 )==1', true],
    ['http_req_duration', 'avg<5e1', false],
    ['http_req_duration', 'avg>.5', true],
    ['http_req_duration', 'avg>-1', true],
    // counter: 1 dropped iteration in 20 s is 0.05/s
    ['dropped_iterations', 'rate<0.1', true],
    ['dropped_iterations', 'rate<0.05', false],
    ['dropped_iterations', 'count==1', true],
    ['dropped_iterations', 'count<1', false],
    // rate: 1 failure of 4
    ['http_req_failed', 'rate<0.5', true],
    ['http_req_failed', 'rate<0.25', false],
    ['http_req_failed', 'rate<=0.25', true],
    // gauge: last value 7 (after 3, 9)
    ['vus', 'value==7', true],
    ['vus', 'value>=9', false],
  ] as const)('%s %j passes: %s', (metric, expression, ok) => {
    expect(verdict(metric, expression)).toBe(ok);
  });

  it("a counter's rate divides by the time elapsed at evaluation: 100 requests are 10/s at 10 s and 5/s at 20 s", () => {
    const r = new MetricRegistry(() => T0);
    for (let i = 0; i < 100; i++) r.add('http_reqs', 1, {});
    const t = new Thresholds({ http_reqs: ['rate>=10'] }, r);
    expect(t.evaluate(10_000).results[0]).toMatchObject({ ok: true, value: 10 });
    expect(t.evaluate(20_000).results[0]).toMatchObject({ ok: false, value: 5 });
  });

  it('parses p(N) with its percentile and the operator', () => {
    expect(parseThreshold('p(99.9) <= 250')).toEqual({ aggregation: 'p', percentile: 99.9, operator: '<=', value: 250 });
    expect(parseThreshold('rate!=0')).toEqual({ aggregation: 'rate', operator: '!=', value: 0 });
  });
});

describe('threshold configuration errors', () => {
  it.each([
    [{ http_req_duration: ['count>1'] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['p(95)<1', 'rate<1'] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['http_req_duration'][1]"],
    [{ http_req_duration: ['p()<1'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['p(95)<'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['95<p(95)'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['p(101)<1'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['p(-1)<1'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['P(95)<1'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['average<5'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['avg=5'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['avg<<5'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['avg<5ms'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: ['avg 5'] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: [''] }, 'K6_THRESHOLD_SYNTAX', "thresholds['http_req_duration'][0]"],
    [{ http_reqs: ['avg<1'] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['http_reqs'][0]"],
    [{ http_reqs: ['value>0'] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['http_reqs'][0]"],
    [{ checks: ['count>0'] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['checks'][0]"],
    [{ checks: ['p(95)<1'] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['checks'][0]"],
    [{ vus: ['rate>0'] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['vus'][0]"],
    [{ 'http_req_duration{name:feed}': ['count>0'] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['http_req_duration{name:feed}'][0]"],
    [{ nope: ['avg<1'] }, 'K6_THRESHOLD_METRIC', "thresholds['nope']"],
    [{ 'nope{name:feed}': ['avg<1'] }, 'K6_THRESHOLD_METRIC', "thresholds['nope{name:feed}']"],
    [{ 'http_req_duration{name}': ['avg<1'] }, 'K6_THRESHOLD_SELECTOR', "thresholds['http_req_duration{name}']"],
    [{ 'http_req_duration{name:feed': ['avg<1'] }, 'K6_THRESHOLD_SELECTOR', "thresholds['http_req_duration{name:feed']"],
    [{ http_req_duration: 'p(95)<1' }, 'K6_THRESHOLD_CONFIG', "thresholds['http_req_duration']"],
    [{ http_req_duration: [42] }, 'K6_THRESHOLD_CONFIG', "thresholds['http_req_duration'][0]"],
    [{ http_req_duration: [{ abortOnFail: true }] }, 'K6_THRESHOLD_CONFIG', "thresholds['http_req_duration'][0].threshold"],
    [{ http_req_duration: [{ threshold: 'p(95)<1', abortOnFail: 'yes' }] }, 'K6_THRESHOLD_CONFIG', "thresholds['http_req_duration'][0].abortOnFail"],
    [{ http_req_duration: [{ threshold: 'p(95)<1', delayAbortEval: '10 seconds' }] }, 'K6_THRESHOLD_CONFIG', "thresholds['http_req_duration'][0].delayAbortEval"],
    [{ http_req_duration: [{ threshold: 'p(95)<1', abortOnFailure: true }] }, 'K6_THRESHOLD_CONFIG', "thresholds['http_req_duration'][0].abortOnFailure"],
    [{ http_req_duration: [{ threshold: 'count<1' }] }, 'K6_THRESHOLD_AGGREGATION', "thresholds['http_req_duration'][0]"],
    [['p(95)<1'], 'K6_THRESHOLD_CONFIG', 'thresholds'],
  ])('%j is a config error %s at %s', (config, code, field) => {
    expect(configError(config)).toEqual({ code, field });
  });

  it('metrics defined by init code can have thresholds, undefined ones cannot', () => {
    const r = new MetricRegistry(() => T0);
    expect(() => new Thresholds({ feed_ms: ['p(95)<1'] }, r)).toThrow(ThresholdError);
    r.define('feed_ms', 'trend', 'time');
    expect(() => new Thresholds({ feed_ms: ['p(95)<1'] }, r)).not.toThrow();
  });
});

describe('k6 durations', () => {
  it.each([
    ['1h2m3s', 3_723_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['1d', 86_400_000],
    ['250us', 0.25],
    ['1m30s', 90_000],
    [' 10s ', 10_000],
    ['0', 0],
    [10, 10],
  ] as const)('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '10', '1.5', '-1s', 's', '1x', '1 s', '1s2', 'ten seconds', Number.NaN, -5])('%j is rejected', (text) => {
    expect(() => parseDuration(text as string)).toThrow(/invalid duration/);
  });
});

describe('sub-metric thresholds', () => {
  it('a threshold on http_req_duration{name:feed} judges only feed requests', () => {
    const r = new MetricRegistry(() => T0);
    const t = new Thresholds({ 'http_req_duration{name:feed}': ['p(95)<50'], http_req_duration: ['p(95)<50'] }, r);
    expect(r.has('http_req_duration{name:feed}')).toBe(true);
    for (let i = 0; i < 10; i++) {
      r.add('http_req_duration', 10, { name: 'feed' });
      r.add('http_req_duration', 500, { name: 'likes' });
    }
    const res = t.evaluate(1000).results;
    expect(res.map((x) => [x.metric, x.ok, x.value])).toEqual([
      ['http_req_duration{name:feed}', true, 10],
      ['http_req_duration', false, 500],
    ]);
  });

  it('differently spelled selectors for the same tags share one sub-metric, reported under the first spelling', () => {
    const r = new MetricRegistry(() => T0);
    const t = new Thresholds({ 'http_req_duration{ name : "feed" }': ['max<20'], "http_req_duration{name:'feed'}": ['min>5'] }, r);
    r.add('http_req_duration', 10, { name: 'feed' });
    expect(t.evaluate(1000).results.map((x) => [x.metric, x.expression, x.ok])).toEqual([
      ['http_req_duration{name : "feed"}', 'max<20', true],
      ['http_req_duration{name : "feed"}', 'min>5', true],
    ]);
  });
});

describe('evaluation during the run', () => {
  function failing(entry: ThresholdConfig[string][number]) {
    const r = new MetricRegistry(() => T0);
    const t = new Thresholds({ http_req_failed: [entry] }, r);
    for (const v of [1, 1, 0]) r.add('http_req_failed', v, {});
    return t;
  }

  it('abortOnFail with delayAbortEval 10s aborts only once more than 10 s have passed', () => {
    const t = failing({ threshold: 'rate<0.1', abortOnFail: true, delayAbortEval: '10s' });
    expect(t.evaluate(5_000)).toMatchObject({ failed: true, abort: false });
    expect(t.evaluate(10_000)).toMatchObject({ failed: true, abort: false });
    expect(t.evaluate(10_001)).toMatchObject({ failed: true, abort: true });
    expect(t.evaluate(10_001).results[0]).toMatchObject({ metric: 'http_req_failed', expression: 'rate<0.1', ok: false, abortOnFail: true });
  });

  it('abortOnFail without a delay aborts at the first failed evaluation; without abortOnFail it never aborts', () => {
    expect(failing({ threshold: 'rate<0.1', abortOnFail: true }).evaluate(1)).toMatchObject({ failed: true, abort: true });
    expect(failing('rate<0.1').evaluate(60_000)).toMatchObject({ failed: true, abort: false });
    expect(failing({ threshold: 'rate<0.9', abortOnFail: true }).evaluate(60_000)).toMatchObject({ failed: false, abort: false });
  });

  it('a threshold on a metric with no samples yet is not judged: ok, with no value', () => {
    const r = new MetricRegistry(() => T0);
    const t = new Thresholds({ 'http_req_duration{name:feed}': [{ threshold: 'p(95)<50', abortOnFail: true }], checks: ['rate>0.99'], iterations: ['count>0'] }, r);
    const v = t.evaluate(30_000);
    expect(v).toMatchObject({ failed: false, abort: false });
    expect(v.results.map((x) => [x.ok, x.value])).toEqual([
      [true, undefined],
      [true, undefined],
      [true, undefined],
    ]);
  });

  it("the final evaluation judges empty metrics on k6's zero values: count>0 on an idle counter fails", () => {
    const r = new MetricRegistry(() => T0);
    const t = new Thresholds({ 'http_req_duration{name:feed}': ['p(95)<50'], iterations: ['count>0'] }, r);
    const v = t.evaluate(30_000, { final: true });
    expect(v.failed).toBe(true);
    expect(v.results.map((x) => [x.metric, x.ok, x.value])).toEqual([
      ['http_req_duration{name:feed}', true, 0],
      ['iterations', false, 0],
    ]);
  });

  it('a threshold on a rate with no samples passes at the end too, as in k6 (whichever way it points)', () => {
    const r = new MetricRegistry(() => T0);
    r.define('empty_rate', 'rate', 'default');
    const t = new Thresholds({ empty_rate: ['rate>0.5', 'rate<0.5'], 'checks{kind:never}': ['rate==1'] }, r);
    const v = t.evaluate(30_000, { final: true });
    expect(v.failed).toBe(false);
    expect(v.results.map((x) => [x.metric, x.expression, x.ok, x.value])).toEqual([
      ['empty_rate', 'rate>0.5', true, undefined],
      ['empty_rate', 'rate<0.5', true, undefined],
      ['checks{kind:never}', 'rate==1', true, undefined],
    ]);
  });

  it('lists its definitions with resolved delays', () => {
    const t = failing({ threshold: 'rate<0.1', abortOnFail: true, delayAbortEval: '1m30s' });
    expect(t.definitions()).toEqual([{ metric: 'http_req_failed', expression: 'rate<0.1', abortOnFail: true, delayAbortEvalMs: 90_000 }]);
  });
});
