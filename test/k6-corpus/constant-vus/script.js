// constant-vus: 2 VUs for 2 s with sleep. Every trend statistic in a threshold, holding by a wide
// margin, and one p(95) that cannot hold (exit 99).
import http from 'k6/http';
import { check, sleep } from 'k6';

export const options = {
  scenarios: {
    steady: { executor: 'constant-vus', vus: 2, duration: '2s' },
  },
  thresholds: {
    http_req_duration: ['avg<10000', 'min<10000', 'max<10000', 'med<10000', 'p(90)<10000', 'p(99.9)<10000', 'p(95)<0.0001'],
    http_req_waiting: ['avg>=0'],
    iteration_duration: ['min>100'],
    http_req_failed: ['rate<0.5'],
  },
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/healthz`);
  check(res, { 'status is 200': (r) => r.status === 200 });
  sleep(0.2);
}
