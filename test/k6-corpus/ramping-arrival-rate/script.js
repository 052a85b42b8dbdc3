// ramping-arrival-rate: from 2 to 10 iterations a second in 1 s, 10 a second for 1 s more.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: 2,
      timeUnit: '1s',
      preAllocatedVUs: 3,
      maxVUs: 6,
      stages: [
        { target: 10, duration: '1s' },
        { target: 10, duration: '1s' },
      ],
    },
  },
  thresholds: {
    iterations: ['count>3', 'count<100'],
    iteration_duration: ['p(99)<10000', 'max<0.0001'],
    http_req_failed: ['rate<0.5'],
  },
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/healthz`);
  check(res, { 'status is 200': (r) => r.status === 200 });
}
