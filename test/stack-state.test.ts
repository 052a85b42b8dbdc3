// The stack's state file follows a failover: the promoted replica is its server's primary in
// stack.json, the old primary is kept as retired (stopped; `stack down` drops it by name).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readStack, recordPromotion, stackPostgres, type StackState } from '../sim/backends/local-stack.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stackFile(): StackState {
  const dir = mkdtempSync(join(tmpdir(), 'sg-stack-state-'));
  dirs.push(dir);
  const state: StackState = {
    version: 1,
    id: 'abcd1234',
    dir,
    layout: 'small',
    createdAt: '2026-12-07T00:00:00.000Z',
    redisUrl: 'redis://127.0.0.1:6379',
    amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
    memcached: [],
    postgres: {
      version: '15',
      servers: [0, 1].map((i) => ({
        cluster: `scalegram-abcd1234-p${i}`,
        port: 6000 + i,
        url: `postgres://postgres@127.0.0.1:${6000 + i}/scalegram`,
        shards: [i],
        replicas: [{ cluster: `scalegram-abcd1234-p${i}-r0`, port: 7000 + i, url: `postgres://postgres@127.0.0.1:${7000 + i}/scalegram` }],
      })),
    },
    topologyFile: join(dir, 'topology.json'),
  };
  writeFileSync(join(dir, 'stack.json'), JSON.stringify(state));
  return state;
}

describe('stack.json after a failover', () => {
  it('names the promoted replica as the primary, the old one retired, and the next serve takes the promoted one', () => {
    const state = stackFile();
    expect(stackPostgres(state)![1]!.clusters!.stackDir).toBe(state.dir);
    recordPromotion(state.dir, 'scalegram-abcd1234-p1', 'scalegram-abcd1234-p1-r0');
    const after = readStack(state.dir)!;
    const s1 = after.postgres!.servers[1]!;
    expect(s1).toMatchObject({ cluster: 'scalegram-abcd1234-p1-r0', port: 7001, url: 'postgres://postgres@127.0.0.1:7001/scalegram', replicas: [], retired: ['scalegram-abcd1234-p1'] });
    expect(after.postgres!.servers[0]).toEqual(state.postgres!.servers[0]);
    const spec = stackPostgres(after)![1]!;
    expect(spec.url).toBe('postgres://postgres@127.0.0.1:7001/scalegram');
    expect(spec.replicas).toEqual([]);
  });

  it('changes nothing for names it does not know', () => {
    const state = stackFile();
    const before = readFileSync(join(state.dir, 'stack.json'), 'utf8');
    recordPromotion(state.dir, 'scalegram-abcd1234-p1', 'scalegram-other-r0');
    recordPromotion(state.dir, 'scalegram-nope', 'scalegram-abcd1234-p1-r0');
    expect(readFileSync(join(state.dir, 'stack.json'), 'utf8')).toBe(before);
  });
});
