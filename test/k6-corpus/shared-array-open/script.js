// SharedArray from k6/data filled from open() of a JSON file beside the script, open() of a text
// file, and __ENV (BASE_URL given with -e, a name never given).
import http from 'k6/http';
import { check } from 'k6';
import { SharedArray } from 'k6/data';

const users = new SharedArray('users', function () {
  return JSON.parse(open('./users.json'));
});
const message = open('./message.txt');

export const options = {
  scenarios: {
    three: { executor: 'per-vu-iterations', vus: 3, iterations: 2 },
  },
  thresholds: {
    checks: ['rate==1'],
  },
};

export default function () {
  const user = users[(__VU - 1) % users.length];
  const res = http.get(`${__ENV.BASE_URL}/healthz?user=${user.name}&iter=${__ITER}`);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'SharedArray has 3 users': () => users.length === 3,
    'SharedArray item by VU': () => user.n === ((__VU - 1) % 3) + 1,
    'open() read the text file': () => message === 'hello from a file beside the script\n',
    '__ENV.BASE_URL given': () => typeof __ENV.BASE_URL === 'string' && __ENV.BASE_URL.startsWith('http'),
    '__ENV of a name never given is undefined': () => __ENV.NEVER_GIVEN_CORPUS === undefined,
  });
}
