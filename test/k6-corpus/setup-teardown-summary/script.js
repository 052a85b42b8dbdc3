// setup() signs a user up and returns its token: every iteration reads the data setup returned;
// teardown() gets it too; handleSummary() writes a file (relative to the working directory) and
// prints to stdout.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';

const teardowns = new Counter('teardown_calls');

export const options = {
  scenarios: {
    two: { executor: 'per-vu-iterations', vus: 2, iterations: 3 },
  },
  thresholds: {
    checks: ['rate==1'],
    teardown_calls: ['count==1'],
    'http_req_duration{name:self}': ['p(95)<10000'],
    // k6 runs setup() and teardown() in groups of their own, ::setup and ::teardown.
    'http_reqs{group:::setup}': ['count==1'],
    'teardown_calls{group:::teardown}': ['count==1'],
  },
};

export function setup() {
  const username = `k6corpus_${Date.now() % 1000000000}_${Math.floor(Math.random() * 1000)}`;
  const res = http.post(`${__ENV.BASE_URL}/v1/accounts`, { username, password: 'corpus-secret-1', full_name: 'K6 Corpus', is_private: 'false' });
  check(res, { 'signed up': (r) => r.status === 200 });
  return { token: res.json('data.access_token'), username, answer: 42 };
}

export default function (data) {
  const res = http.get(`${__ENV.BASE_URL}/v1/users/self?access_token=${data.token}`, { tags: { name: 'self' } });
  check(res, {
    'self is 200': (r) => r.status === 200,
    'self is the user setup made': (r) => r.json('data.username') === data.username,
    'setup data arrived': () => data.answer === 42,
  });
}

export function teardown(data) {
  check(data, { 'teardown gets setup data': (d) => d.answer === 42 });
  teardowns.add(1);
}

export function handleSummary(data) {
  const checks = {};
  const collect = (group) => {
    for (const c of group.checks) checks[c.name] = { passes: c.passes, fails: c.fails };
    for (const g of group.groups) collect(g);
  };
  collect(data.root_group);
  const file = {
    setupAnswer: data.setup_data.answer,
    iterations: data.metrics.iterations.values.count,
    teardownCalls: data.metrics.teardown_calls.values.count,
    checks,
    thresholds: Object.fromEntries(
      Object.entries(data.metrics)
        .filter(([, m]) => m.thresholds)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, m]) => [name, Object.fromEntries(Object.entries(m.thresholds).map(([t, v]) => [t, v.ok]))]),
    ),
  };
  return {
    'handle-summary.json': JSON.stringify(file, null, 2),
    stdout: `handleSummary: ${file.iterations} iterations, setup answer ${file.setupAnswer}\n`,
  };
}
