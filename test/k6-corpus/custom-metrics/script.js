// Custom metrics, one VU and 10 iterations so every value is known: a Counter, a Gauge, a Rate and
// a Trend, with tags, and thresholds of every form on them and on their tagged sub-metrics.
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';

const items = new Counter('my_counter');
const level = new Gauge('my_gauge');
const ok = new Rate('my_rate');
const size = new Trend('my_trend');

export const options = {
  scenarios: {
    one: { executor: 'per-vu-iterations', vus: 1, iterations: 10 },
  },
  thresholds: {
    // 10 iterations add 2 each: count 20, of which 10 tagged kind:even.
    my_counter: ['count==20', 'count>1000', 'rate>0', 'rate>100000'],
    'my_counter{kind:even}': ['count==10', 'count<5'],
    // 0, 1, … 9: the last value is 9.
    my_gauge: ['value==9', 'value<100', 'value>1000'],
    // true for iterations 0, 1, 2: 3 of 10.
    my_rate: ['rate<0.5', 'rate>0.9'],
    'my_rate{kind:odd}': ['rate<0.01'],
    // 0, 10, … 90: avg 45, min 0, max 90, med 45, p(90) 81, p(95) 85.5 (k6 interpolates between
    // the two nearest values). The exact ones hold only if percentiles are computed exactly.
    my_trend: ['avg<100', 'avg>1000', 'min<1', 'max>80', 'max<85', 'med>40', 'med<50', 'p(95)<100', 'p(90)>1000', 'med==45', 'p(90)<=81', 'p(95)<85.501'],
    'my_trend{kind:even}': ['max<100', 'min>1000'],
  },
};

export default function () {
  const kind = __ITER % 2 === 0 ? 'even' : 'odd';
  items.add(2, { kind });
  level.add(__ITER, { kind });
  ok.add(__ITER < 3, { kind });
  size.add(__ITER * 10, { kind });
}
