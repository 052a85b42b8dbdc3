// Thresholds on metrics that never get a sample: a Trend, a Counter, a Rate, and a tag value no
// request carries.
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';

new Trend('never_trend');
new Counter('never_counter');
new Rate('never_rate');

export const options = {
  vus: 1,
  iterations: 3,
  thresholds: {
    never_trend: ['p(95)<100', 'avg>1'],
    never_counter: ['count<1', 'count>0'],
    never_rate: ['rate<0.5', 'rate>0.5'],
    'http_req_duration{name:never}': ['max<100'],
    http_req_failed: ['rate<0.5'],
  },
};

export default function () {
  http.get(`${__ENV.BASE_URL}/healthz`);
}
