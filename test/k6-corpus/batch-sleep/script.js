// http.batch of three requests (one of them a 404) and sleep between iterations: 2 VUs × 3
// iterations, so 18 requests of which 6 fail.
import http from 'k6/http';
import { check, sleep } from 'k6';

export const options = {
  scenarios: {
    batch: { executor: 'per-vu-iterations', vus: 2, iterations: 3 },
  },
  thresholds: {
    http_reqs: ['count==18'],
    'http_reqs{status:404}': ['count==6'],
    'http_reqs{name:batch-missing}': ['count>100'],
    http_req_failed: ['rate<0.5', 'rate<0.1'],
    'http_req_duration{name:batch-health}': ['max<10000'],
  },
};

export default function () {
  const base = __ENV.BASE_URL;
  const responses = http.batch([
    ['GET', `${base}/healthz`, null, { tags: { name: 'batch-health' } }],
    { method: 'GET', url: `${base}/healthz?second=1`, params: { tags: { name: 'batch-health' } } },
    ['GET', `${base}/v1/nope`, null, { tags: { name: 'batch-missing' } }],
  ]);
  check(responses[0], { 'first is 200': (r) => r.status === 200 });
  check(responses[1], { 'second is 200': (r) => r.status === 200 });
  check(responses[2], { 'third is 404': (r) => r.status === 404 });
  check(responses, { 'batch gave 3 responses': (rs) => rs.length === 3 });
  sleep(0.3);
}
