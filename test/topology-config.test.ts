// The topology document: presets resolve, defaults come from the schema, a bad field is refused
// with SG_ERR_CONFIG_INVALID naming it, JSON files extend presets, and the result is frozen.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SimError, isSimError } from '../sim/engine/errors.ts';
import { INSTAGRAM_EPOCH_MS } from '../sim/parts/ids.ts';
import { DEFAULT_PRESET, PRESETS, loadTopology, resolveTopology } from '../sim/topology-config.ts';

function configError(fn: () => unknown): SimError {
  try {
    fn();
  } catch (e) {
    if (isSimError(e, 'SG_ERR_CONFIG_INVALID')) return e;
    throw new Error(`expected SG_ERR_CONFIG_INVALID, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected SG_ERR_CONFIG_INVALID, but the config was accepted');
}

const dir = mkdtempSync(join(tmpdir(), 'sg-topology-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('presets', () => {
  it.each(Object.keys(PRESETS))('preset %s resolves, keeps its name and has physical ≤ logical', (name) => {
    const cfg = loadTopology(name);
    expect(cfg.name).toBe(name);
    expect(cfg.description.length).toBeGreaterThan(10);
    expect(cfg.shards.physical).toBeLessThanOrEqual(cfg.shards.logical);
  });

  it('follows the history: one box, then a vertical split, then 2048 logical shards over 12 servers', () => {
    const single = loadTopology('2010-single');
    expect([single.shards.physical, single.database.replicas, single.database.partitioning, single.cache.nodes]).toEqual([1, 0, 'none', 1]);
    const vertical = loadTopology('2011-vertical');
    expect(vertical.database.partitioning).toBe('vertical');
    const sharded = loadTopology('2012-sharded');
    expect([sharded.shards.logical, sharded.shards.physical, sharded.cache.nodes, sharded.queue.workers]).toEqual([2048, 12, 6, 200]);
  });

  it('loads the default preset (2012-sharded) when no name is given', () => {
    expect(DEFAULT_PRESET).toBe('2012-sharded');
    expect(loadTopology().name).toBe('2012-sharded');
  });

  it('an unknown preset name is SG_ERR_CONFIG_INVALID naming the known presets', () => {
    const err = configError(() => loadTopology('2013-webscale'));
    expect(err.message).toContain('2012-sharded');
    expect(err.details?.field).toBe('topology');
    // Inherited object keys are not presets.
    configError(() => loadTopology('constructor'));
  });
});

describe('defaults', () => {
  it('fills every section from the schema for an empty document', () => {
    const cfg = resolveTopology({});
    expect(cfg.name).toBe('custom');
    expect(cfg.idEpochMs).toBe(INSTAGRAM_EPOCH_MS);
    expect(cfg.shards).toEqual({ logical: 2048, physical: 12, strategy: 'modulo', usersPerRange: 10000 });
    expect(cfg.database.readPolicy).toBe('read-your-writes');
    expect(cfg.database.replicas).toBe(1);
    expect(cfg.database.replicaLagMs).toBe(20);
    expect(cfg.database.poolSize).toBe(32);
    expect(cfg.cache).toMatchObject({ nodes: 6, pointsPerNode: 160, hashing: 'ketama', leases: false });
    expect(cfg.feed).toMatchObject({ maxLength: 800, fanout: 'push', chunkSize: 4000 });
    expect(cfg.queue.workers).toBe(200);
    expect(cfg.geo.enabled).toBe(true);
    expect(cfg.blobs.maxUploadBytes).toBe(8 * 1024 * 1024);
  });

  it('fills the rest of a section that is given in part', () => {
    const cfg = resolveTopology({ shards: { logical: 64, physical: 4 } });
    expect(cfg.shards).toEqual({ logical: 64, physical: 4, strategy: 'modulo', usersPerRange: 10000 });
  });

  it('merges overrides onto a preset, keeping the preset elsewhere', () => {
    const cfg = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, cache: { nodes: 3 } });
    expect(cfg.shards).toMatchObject({ logical: 64, physical: 4, strategy: 'modulo' });
    expect(cfg.cache.nodes).toBe(3);
    expect(cfg.queue.workers).toBe(200);
    // The preset itself is untouched.
    expect(PRESETS['2012-sharded']!.cache!.nodes).toBe(6);
    expect(loadTopology('2012-sharded').shards.logical).toBe(2048);
  });
});

describe('validation', () => {
  const cases: Array<[string, unknown, string]> = [
    ['shards.logical 0', { shards: { logical: 0 } }, 'shards.logical'],
    ['shards.logical 9000 (over 13 bits)', { shards: { logical: 9000, physical: 4 } }, 'shards.logical'],
    ['shards.logical "x"', { shards: { logical: 'x' } }, 'shards.logical'],
    ['shards.logical 2.5', { shards: { logical: 2.5 } }, 'shards.logical'],
    ['shards.strategy "hash"', { shards: { strategy: 'hash' } }, 'shards.strategy'],
    ['cache.nodes -1', { cache: { nodes: -1 } }, 'cache.nodes'],
    ['feed.fanout "sideways"', { feed: { fanout: 'sideways' } }, 'feed.fanout'],
    ['database.readPolicy "nearest"', { database: { readPolicy: 'nearest' } }, 'database.readPolicy'],
    ['database.replicas 5', { database: { replicas: 5 } }, 'database.replicas'],
    ['database.poolSize 0', { database: { poolSize: 0 } }, 'database.poolSize'],
    ['unknown top-level field', { shardz: { logical: 4 } }, 'shardz'],
    ['unknown nested field', { cache: { nodez: 4 } }, 'cache.nodez'],
    ['shards.physical > shards.logical', { shards: { logical: 4, physical: 8 } }, 'shards.physical'],
    ['shards not an object', { shards: 5 }, 'shards'],
    ['cache null', { cache: null }, 'cache'],
    ['empty name', { name: '' }, 'name'],
    ['idEpochMs negative', { idEpochMs: -5 }, 'idEpochMs'],
    ['extends outside a file', { extends: '2012-sharded' }, 'extends'],
  ];

  it.each(cases)('%s is SG_ERR_CONFIG_INVALID naming the field', (_label, input, field) => {
    const err = configError(() => resolveTopology(input));
    expect(err.message).toContain(field);
    expect(err.details?.field).toBe(field);
  });

  it.each([null, [], 'preset', 42])('a non-object document (%j) is SG_ERR_CONFIG_INVALID', (input) => {
    configError(() => resolveTopology(input));
  });

  it('an override can be just as wrong as a file, and is refused the same way', () => {
    const err = configError(() => loadTopology('2012-sharded', { cache: { nodes: -1 } }));
    expect(err.details?.field).toBe('cache.nodes');
  });

  it('does not change the input it validates', () => {
    const input = { shards: { logical: 64 } };
    resolveTopology(input);
    expect(input).toEqual({ shards: { logical: 64 } });
  });
});

describe('topology files', () => {
  it('a JSON file that extends a preset gets the preset, its own fields on top, and its file name', () => {
    const file = join(dir, 'small.json');
    writeFileSync(file, JSON.stringify({ extends: '2012-sharded', shards: { logical: 64, physical: 4 }, feed: { fanout: 'hybrid' } }));
    const cfg = loadTopology(file);
    expect(cfg.name).toBe(file);
    expect(cfg.shards).toMatchObject({ logical: 64, physical: 4, strategy: 'modulo' });
    expect(cfg.feed.fanout).toBe('hybrid');
    expect(cfg.cache.nodes).toBe(6);
    expect(cfg.queue.workers).toBe(200);
    expect(cfg).not.toHaveProperty('extends');
  });

  it('a file may name itself, and overrides still apply on top of the file', () => {
    const file = join(dir, 'named.json');
    writeFileSync(file, JSON.stringify({ extends: '2010-single', name: 'launch-box', cache: { nodes: 2 } }));
    const cfg = loadTopology(file, { cache: { nodes: 4 } });
    expect(cfg.name).toBe('launch-box');
    expect(cfg.shards.physical).toBe(1);
    expect(cfg.cache.nodes).toBe(4);
  });

  it('a file without extends stands alone on the schema defaults', () => {
    const file = join(dir, 'plain.json');
    writeFileSync(file, JSON.stringify({ name: 'plain', shards: { logical: 16, physical: 2 } }));
    const cfg = loadTopology(file);
    expect(cfg.name).toBe('plain');
    expect(cfg.shards.logical).toBe(16);
    expect(cfg.cache.nodes).toBe(6);
  });

  it('a file that extends an unknown preset, is not JSON, is missing, or has a bad field is SG_ERR_CONFIG_INVALID', () => {
    const unknown = join(dir, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ extends: '2099-future' }));
    expect(configError(() => loadTopology(unknown)).details?.field).toBe('extends');
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ "shards": ');
    configError(() => loadTopology(broken));
    configError(() => loadTopology(join(dir, 'missing.json')));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ extends: '2012-sharded', feed: { fanout: 'sideways' } }));
    expect(configError(() => loadTopology(bad)).details?.field).toBe('feed.fanout');
  });
});

describe('the resolved config', () => {
  it('is deeply frozen', () => {
    const cfg = loadTopology('2012-sharded');
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.shards)).toBe(true);
    expect(Object.isFrozen(cfg.database)).toBe(true);
    expect(() => {
      (cfg.shards as { logical: number }).logical = 1;
    }).toThrow(TypeError);
    expect(cfg.shards.logical).toBe(2048);
  });

  it('round-trips through JSON (results record it) to an equal config', () => {
    const cfg = loadTopology('2011-vertical', { feed: { fanout: 'pull' } });
    expect(resolveTopology(JSON.parse(JSON.stringify(cfg)))).toEqual(cfg);
  });
});

describe('building a topology', () => {
  it('refuses an idEpochMs so far back that ids would overflow 63 bits, naming the field', async () => {
    const { buildTopology } = await import('../sim/topology.ts');
    const err = await buildTopology({ config: loadTopology('2010-single', { idEpochMs: 0 }), seed: 1, sampleEveryMs: 0 }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('SG_ERR_CONFIG_INVALID');
    expect((err as { details?: { field?: string } }).details?.field).toBe('idEpochMs');
  });
});
