// Rate limits on a real Redis: two servers of one deployment (one namespace) draw on one budget per
// client, as Instagram's app servers behind a load balancer did; a server of another deployment has
// its own. The two servers here are two apps in the test's process, each with its own limiter: only
// Redis connects them. Skipped with a message where Redis is absent, except in CI (CI=true).

import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { probeRedis } from '../sim/backends/probe.ts';
import { makeEnv, type TestEnv } from './helpers/app.ts';
import { redisUrl, removeNamespace } from './helpers/real-backends.ts';

const down = await probeRedis(redisUrl);
const mustRun = process.env.CI === 'true';
if (down && !mustRun) console.warn(`shared rate-limit tests skipped: ${down}`);

describe.skipIf(down !== null && !mustRun)('rate limits on a real Redis', () => {
  const ns = `rl-${randomUUID().slice(0, 8)}`;
  const envs: TestEnv[] = [];
  afterAll(async () => {
    for (const e of envs) await e.close();
    await removeNamespace(ns);
    await removeNamespace(`${ns}-other`);
  });

  it("two processes of one deployment share a client's hourly budget; another deployment's process does not", async () => {
    const make = async (namespace: string) => {
      const env = await makeEnv({ rateLimitPerHour: 10, backends: { redisUrl, namespace } });
      envs.push(env);
      return env;
    };
    const [a, b] = [await make(ns), await make(ns)];
    const other = await make(`${ns}-other`);
    const get = (env: TestEnv) => env.app.inject({ method: 'GET', url: '/v1/media/popular' });
    const seen: Array<[number, string]> = [];
    for (let i = 0; i < 6; i++) {
      for (const env of [a, b]) {
        const res = await get(env);
        seen.push([res.statusCode, String(res.headers['x-ratelimit-remaining'])]);
      }
    }
    // One budget of 10 across both: requests 1 … 10 answered (remaining 9 … 0), 11 and 12 refused.
    expect(seen.slice(0, 10).every(([code]) => code !== 429)).toBe(true);
    expect(seen.slice(10).map(([code]) => code)).toEqual([429, 429]);
    expect(seen.map(([, remaining]) => remaining)).toEqual(['9', '8', '7', '6', '5', '4', '3', '2', '1', '0', '0', '0']);
    const fresh = await get(other);
    expect(fresh.statusCode).not.toBe(429);
    expect(fresh.headers['x-ratelimit-remaining']).toBe('9');
    expect(a.topology.metrics.value('rate_limit_store_errors')).toBe(0);
  });
});
