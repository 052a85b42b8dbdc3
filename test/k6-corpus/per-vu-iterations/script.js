// per-vu-iterations: 3 VUs run 4 iterations each. A top-level `let` is mutated once per
// iteration; under k6 every VU has its own copy of the module, so it always equals __ITER + 1.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

let calls = 0;

export const options = {
  scenarios: {
    each: { executor: 'per-vu-iterations', vus: 3, iterations: 4, maxDuration: '30s' },
  },
  thresholds: {
    iterations: ['count==12'],
    checks: ['rate>0.99'],
    'checks{check:module state is per VU}': ['rate==1'],
  },
};

export default function () {
  calls++;
  const res = http.get(`${__ENV.BASE_URL}/healthz`);
  check(res, { 'status is 200': (r) => r.status === 200 });
  check(null, {
    'module state is per VU': () => calls === __ITER + 1,
    '__VU is exec.vu.idInTest': () => __VU === exec.vu.idInTest,
    '__VU is 1..3': () => __VU >= 1 && __VU <= 3,
    '__ITER is 0..3': () => __ITER >= 0 && __ITER <= 3,
  });
}
