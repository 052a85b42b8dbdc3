// exec.test.abort() in the third iteration of the only VU: k6 ends the run with exit 108; teardown
// and handleSummary still run.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';

const teardowns = new Counter('teardown_ran');

export const options = {
  scenarios: {
    one: { executor: 'per-vu-iterations', vus: 1, iterations: 5 },
  },
  thresholds: {
    http_req_failed: ['rate<0.5'],
  },
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/healthz`);
  check(res, { 'before abort': (r) => r.status === 200 });
  if (__ITER === 2) {
    exec.test.abort('enough after three');
  }
  check(res, { 'after abort point': (r) => r.status === 200 });
}

export function teardown() {
  teardowns.add(1);
}
