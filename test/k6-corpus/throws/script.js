// An iteration that throws ends that iteration only: k6 logs the error, counts the iteration and
// exits 0.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  scenarios: {
    one: { executor: 'per-vu-iterations', vus: 1, iterations: 6 },
  },
  thresholds: {
    iterations: ['count==6'],
    checks: ['rate==1'],
  },
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/healthz`);
  check(res, { 'before the throw': (r) => r.status === 200 });
  if (__ITER % 2 === 1) {
    throw new Error(`odd iteration ${__ITER} throws`);
  }
  check(res, { 'even iterations only': (r) => r.status === 200 });
}
