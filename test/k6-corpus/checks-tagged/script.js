// Checks that pass and checks that fail, with tags, and thresholds on checks{my_tag:…}.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  scenarios: {
    two: { executor: 'per-vu-iterations', vus: 2, iterations: 5 },
  },
  thresholds: {
    'checks{my_tag:x}': ['rate>0.99'],
    'checks{my_tag:y}': ['rate>0.99', 'rate<0.01'],
    checks: ['rate>0.4', 'rate<0.6'],
  },
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/healthz`);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'body says ok': (r) => r.json('status') === 'ok',
  }, { my_tag: 'x' });
  check(res, {
    'status is 201': (r) => r.status === 201,
    'body is empty': (r) => r.body === '',
  }, { my_tag: 'y' });
}
