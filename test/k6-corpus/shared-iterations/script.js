// shared-iterations: 4 VUs share 20 iterations; a tagged request; thresholds that hold.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  scenarios: {
    shared: { executor: 'shared-iterations', vus: 4, iterations: 20, maxDuration: '30s' },
  },
  thresholds: {
    http_req_failed: ['rate<0.5'],
    iterations: ['count==20', 'count >= 20'],
    http_reqs: ['count==20', 'count>1000'],
    'http_req_duration{name:health}': ['p(95)<10000'],
    checks: ['rate>0.99'],
  },
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/healthz`, { tags: { name: 'health' } });
  check(res, { 'status is 200': (r) => r.status === 200 });
}
