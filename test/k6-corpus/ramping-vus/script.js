// ramping-vus: 0 → 3 VUs and back in 2.5 s. Nested groups, and thresholds on the group tag.
import http from 'k6/http';
import { check, group, sleep } from 'k6';

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: '1s', target: 3 },
        { duration: '1s', target: 3 },
        { duration: '500ms', target: 0 },
      ],
      gracefulRampDown: '1s',
    },
  },
  thresholds: {
    'http_req_duration{group:::outer}': ['max<10000'],
    'http_req_duration{group:::outer::inner}': ['p(95)<10000', 'p(95)<0.0001'],
    'group_duration{group:::outer}': ['avg<10000'],
    'checks{group:::outer::inner}': ['rate>0.99'],
  },
};

export default function () {
  group('outer', function () {
    const res = http.get(`${__ENV.BASE_URL}/healthz`);
    check(res, { 'outer 200': (r) => r.status === 200 });
    group('inner', function () {
      const inner = http.get(`${__ENV.BASE_URL}/healthz`);
      check(inner, { 'inner 200': (r) => r.status === 200 });
    });
  });
  sleep(0.2);
}
