// constant-arrival-rate: 10 iterations a second for 2 s on a pool of 2 to 5 VUs.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  scenarios: {
    open: { executor: 'constant-arrival-rate', rate: 10, timeUnit: '1s', duration: '2s', preAllocatedVUs: 2, maxVUs: 5 },
  },
  thresholds: {
    iterations: ['count>5', 'count<100'],
    http_req_failed: ['rate<0.5'],
    http_req_duration: ['p(95)<10000'],
    vus_max: ['value>=2'],
    checks: ['rate>0.99'],
  },
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/healthz`);
  check(res, { 'status is 200': (r) => r.status === 200 });
}
