// setup() throws: k6 runs no iteration and exits 107 (a script error).
import http from 'k6/http';

export const options = {
  vus: 1,
  iterations: 3,
  thresholds: {
    http_req_failed: ['rate<0.5'],
  },
};

export function setup() {
  const res = http.get(`${__ENV.BASE_URL}/healthz`);
  if (res.status === 200) {
    throw new Error('setup fails on purpose');
  }
  return {};
}

export default function () {
  http.get(`${__ENV.BASE_URL}/healthz`);
}
