// Copies made in slices stay exact under writes made between the slices: a shard move and a new
// replica, with inserts, deletes and non-idempotent updates (like_count = like_count + 1) landing
// between every two slices, end with exactly the rows of a reference database that took the same
// writes without any copy — nothing lost, nothing applied twice.

import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../sim/engine/clock.ts';
import { DatabaseCluster } from '../sim/parts/database-cluster.ts';
import { DbNode } from '../sim/parts/db-node.ts';
import { encodeId, INSTAGRAM_EPOCH_MS } from '../sim/parts/ids.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { Prng } from '../sim/engine/prng.ts';
import { TABLES } from '../sim/domain/sql-schema.ts';
import { TimeSlicer } from '../sim/engine/time-slicer.ts';
import { loadTopology } from '../sim/topology-config.ts';

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const x of open.splice(0)) x.close();
});

/** A slicer whose every slice is due at once, and that runs `between` before each pause: writes between every two slices. */
class InterleavingSlicer extends TimeSlicer {
  pauses = 0;
  constructor(private readonly between: () => Promise<void>) {
    super(0);
  }
  override async pause(): Promise<void> {
    this.pauses++;
    await this.between();
    return super.pause();
  }
}

const S = 5;
const userId = (n: number) => encodeId(INSTAGRAM_EPOCH_MS + 1_000_000 + n, S, n % 1024);
const mediaId = encodeId(INSTAGRAM_EPOCH_MS + 2_000_000, S, 0);

/**
 * A cluster (64 logical shards on 4 servers, a replica each) and a reference database; `write`
 * runs the same statements on shard S of both. Writes between slices are random but seeded:
 * signups, deletes, follows_count + 1, likes that add to like_count and unlikes that take from it.
 */
function setup() {
  const clock = new VirtualClock(1_400_000_000_000);
  const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, database: { replicas: 1, replicaLagMs: 5, readPolicy: 'primary' } });
  const ref = new DbNode('reference', null);
  const rng = new Prng(99);
  const live = new Set<number>();
  const liked = new Set<number>();
  let next = 0;
  let active = false;
  let writes = 0;
  const slicer = new InterleavingSlicer(async () => {
    if (!active) return;
    for (let i = 0; i < 3; i++) await randomWrite();
  });
  const db = new DatabaseCluster(config, { clock, prng: new Prng(1), metrics: new Metrics(clock), slicer });
  const write = async (statements: Array<[string, ...unknown[]]>) => {
    await db.write('users', S, 'test.write', async (sql) => {
      for (const [q, ...p] of statements) await sql.run(q, ...p);
    });
    for (const [q, ...p] of statements) ref.sql().run(q, ...p);
    writes++;
  };
  const signup = (n: number) => {
    live.add(n);
    return write([['INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?,?,?,?,?,?)', S, userId(n), `u${n}`, `U ${n}`, 'x', n]]);
  };
  const randomWrite = async () => {
    const ids = [...live];
    const pick = () => ids[rng.int(0, ids.length - 1)]!;
    const r = rng.next();
    if (r < 0.3 || ids.length < 10) return signup(next++);
    if (r < 0.45) {
      const n = pick();
      live.delete(n);
      const unlike: Array<[string, ...unknown[]]> = liked.delete(n) ? [['DELETE FROM likes WHERE media_id = ? AND user_id = ?', mediaId, userId(n)], ['UPDATE media SET like_count = like_count - 1 WHERE id = ?', mediaId]] : [];
      return write([['DELETE FROM users WHERE id = ?', userId(n)], ...unlike]);
    }
    if (r < 0.7) return write([['UPDATE users SET follows_count = follows_count + 1 WHERE id = ?', userId(pick())]]);
    const n = pick();
    if (liked.has(n)) {
      liked.delete(n);
      return write([['DELETE FROM likes WHERE media_id = ? AND user_id = ?', mediaId, userId(n)], ['UPDATE media SET like_count = like_count - 1 WHERE id = ?', mediaId]]);
    }
    liked.add(n);
    return write([['INSERT INTO likes (shard_id, media_id, user_id, id, created_ms) VALUES (?,?,?,?,?)', S, mediaId, userId(n), userId(n), n], ['UPDATE media SET like_count = like_count + 1 WHERE id = ?', mediaId]]);
  };
  open.push(db, ref);
  return {
    db,
    ref,
    clock,
    slicer,
    writes: () => writes,
    async populate(users: number) {
      await write([["INSERT INTO media (shard_id, id, user_id, created_ms, filter, tags, images) VALUES (?,?,?,?,'Normal','[]','{}')", S, mediaId, userId(0), 0]]);
      for (let n = 0; n < users; n++) await signup(next++);
    },
    interleave(on: boolean) {
      active = on;
    },
  };
}

/** Every row of shard S on a node, table by table, in key order, as text (bigints included). */
function rowsOf(node: DbNode): string[] {
  const out: string[] = [];
  for (const table of TABLES) {
    const rows = node.db.prepare(`SELECT * FROM ${table} WHERE shard_id = ?`).raw(true).safeIntegers(true).all(S) as unknown[][];
    for (const r of rows) out.push(`${table}: ${r.map(String).join('|')}`);
  }
  return out.sort();
}

describe('copies made in slices under writes between the slices', () => {
  it('a shard move ends with exactly the rows of a reference that took the same writes (inserts, deletes, +1 and -1 updates)', async () => {
    const t = setup();
    await t.populate(300);
    const group = t.db.groupFor('users');
    const from = group.servers[group.map.physicalOf(S)]!;
    const to = group.servers[(from.index + 1) % 4]!;
    const before = t.writes();
    t.interleave(true);
    const report = await t.db.moveShard('main', S, to.index, { batch: 7 });
    t.interleave(false);
    const during = t.writes() - before;

    // Writes really landed between slices, on rows already copied and on rows not yet copied.
    expect(t.slicer.pauses).toBeGreaterThan(40);
    expect(during).toBeGreaterThan(100);
    expect(report.entriesCaughtUp).toBeGreaterThan(0);
    expect(group.map.physicalOf(S)).toBe(to.index);
    const expected = rowsOf(t.ref);
    expect(expected.length).toBeGreaterThan(250);
    expect(rowsOf(to.primary)).toEqual(expected);
    expect(rowsOf(from.primary)).toEqual([]);
    // like_count matches the likes: no +1 was applied twice or lost.
    const likeCount = Number((to.primary.db.prepare('SELECT like_count AS n FROM media WHERE id = ?').get(mediaId) as { n: number }).n);
    expect(likeCount).toBe(Number((t.ref.db.prepare('SELECT count(*) AS n FROM likes').get() as { n: number }).n));
    // Replicas follow: the destination's holds the shard, the source's has dropped it.
    await t.clock.advance(10);
    t.db.drainReplicas();
    expect(rowsOf(to.replicas[0]!)).toEqual(expected);
    expect(rowsOf(from.replicas[0]!)).toEqual([]);
    // And writes after the switch go to the destination only.
    t.interleave(true);
    await t.slicer.pause();
    t.interleave(false);
    expect(rowsOf(to.primary)).toEqual(rowsOf(t.ref));
    expect(rowsOf(from.primary)).toEqual([]);
  });

  it('a replica provisioned in slices holds exactly its primary’s rows and follows it', async () => {
    const t = setup();
    await t.populate(300);
    const server = t.db.groupFor('users').servers[t.db.groupFor('users').map.physicalOf(S)]!;
    const before = t.writes();
    t.interleave(true);
    const replica = await t.db.provisionReplica(server, 'extra', 0);
    t.interleave(false);
    open.push(replica);
    expect(t.writes() - before).toBeGreaterThan(20);
    expect(rowsOf(replica)).toEqual(rowsOf(t.ref));
    expect(rowsOf(server.primary)).toEqual(rowsOf(t.ref));
    // It follows the primary's log from where the copy caught up: later writes arrive too.
    t.interleave(true);
    await t.slicer.pause();
    t.interleave(false);
    expect(rowsOf(replica)).toEqual(rowsOf(t.ref));
  });
});
