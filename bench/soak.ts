// The soak workload for `scalegram bench --soak MIN`: a fixed read-heavy load (feeds, media, profiles)
// for MIN minutes on a seeded population, with no writes, so the service's data does not grow and
// any growth in memory is the runner's or the server's own. Metrics must stay bounded (HDR, buckets).

import { check } from 'k6';
import http from 'k6/http';

const MINUTES = Number(__ENV.MINUTES || '60');
const BASE = __ENV.BASE_URL;

export const options = {
  scenarios: {
    reads: { executor: 'constant-arrival-rate', rate: Number(__ENV.RATE || '300'), timeUnit: '1s', duration: `${MINUTES}m`, preAllocatedVUs: 50, maxVUs: 200 },
  },
  thresholds: { http_req_failed: ['rate<0.01'] },
};

interface User {
  id: string;
  access_token: string;
}

export async function setup(): Promise<{ users: User[] }> {
  const admin = { Authorization: `Bearer ${__ENV.ADMIN_TOKEN}` };
  await http.post(`${BASE}/_sim/seed`, JSON.stringify({ users: 5000, avgFollows: 20, celebrities: 5, mediaPerUser: 2, seed: 1 }), { headers: { 'Content-Type': 'application/json', ...admin }, timeout: '600s' });
  const res = await http.get(`${BASE}/_sim/users?offset=0&limit=1000`, { headers: admin });
  return { users: (res.json() as unknown as { users: User[] }).users };
}

export default async function (data: { users: User[] }): Promise<void> {
  const u = data.users[Math.floor(Math.random() * data.users.length)]!;
  const r = Math.random();
  const url = r < 0.6 ? `${BASE}/v1/users/self/feed?access_token=${u.access_token}` : r < 0.8 ? `${BASE}/v1/users/${data.users[Math.floor(Math.random() * data.users.length)]!.id}?access_token=${u.access_token}` : `${BASE}/v1/users/${u.id}/media/recent?access_token=${u.access_token}`;
  const res = await http.get(url, { tags: { name: r < 0.6 ? 'feed' : r < 0.8 ? 'user' : 'user_media' } });
  check(res, { ok: (x) => x.status === 200 });
}
