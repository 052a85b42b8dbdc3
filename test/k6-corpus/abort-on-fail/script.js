// The object form of a threshold: abortOnFail with delayAbortEval ends a run planned for 8 s early
// (exit 99); another object-form threshold holds and aborts nothing.
import http from 'k6/http';
import { sleep } from 'k6';

export const options = {
  scenarios: {
    long: { executor: 'constant-vus', vus: 2, duration: '8s' },
  },
  thresholds: {
    http_req_duration: [{ threshold: 'p(95)<0.0001', abortOnFail: true, delayAbortEval: '1s' }],
    http_req_failed: [{ threshold: 'rate<0.5', abortOnFail: true }],
    iterations: ['count>0'],
  },
};

export default function () {
  http.get(`${__ENV.BASE_URL}/healthz`);
  sleep(0.1);
}
