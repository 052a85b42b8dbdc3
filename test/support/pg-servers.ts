// Real Postgres servers for a test: primaries with streaming replicas, made with the stack's own
// steps (Debian's pg_createcluster, pg_basebackup), each holding its logical shards' schemas as
// `scalegram stack up` lays them out, and dropped again at the end.

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort } from '../../sim/backends/memcached.ts';
import { clustersNamed, createDatabase, createPrimary, createReplica, postgresProblem, postgresVersion, run } from '../../sim/backends/local-stack.ts';
import { migrate } from '../../sim/backends/postgres/migrations.ts';
import type { PostgresServerSpec } from '../../sim/backends/postgres/pg-tier.ts';
import { ShardMap } from '../../sim/parts/shard-map.ts';

/** Why real clusters cannot be made here (null: they can). Under CI=true a test must fail instead of skipping. */
export const pgClustersProblem = postgresProblem();
export const pgClustersRequired = process.env.CI === 'true';

export interface PgServers {
  specs: PostgresServerSpec[];
  /** Drops every cluster made (replicas first). */
  drop(): void;
}

/** `servers` primaries with `replicas` streaming replicas each, holding `logical` shards by the modulo map. */
export async function makePgServers(o: { servers: number; logical: number; replicas: number }): Promise<PgServers> {
  const version = postgresVersion()!;
  const prefix = `scalegram-test-${randomBytes(4).toString('hex')}-`;
  const drop = () => {
    for (const [v, name] of clustersNamed(prefix).sort((a, b) => b[1].length - a[1].length)) run('pg_dropcluster', [v, name, '--stop'], `dropping ${name}`);
  };
  const specs: PostgresServerSpec[] = [];
  try {
    const map = new ShardMap(o.logical, o.servers);
    for (let i = 0; i < o.servers; i++) {
      const name = `${prefix}p${i}`;
      const port = await freePort();
      createPrimary(version, name, port);
      await createDatabase(port);
      const url = `postgres://postgres@127.0.0.1:${port}/scalegram`;
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      try {
        await migrate(pool, map.shardsOn(i));
      } finally {
        await pool.end();
      }
      const replicas: string[] = [];
      const replicaClusters: string[] = [];
      for (let r = 0; r < o.replicas; r++) {
        const rname = `${name}-r${r}`;
        const rport = await freePort();
        createReplica(version, rname, rport, port);
        replicas.push(`postgres://postgres@127.0.0.1:${rport}/scalegram`);
        replicaClusters.push(rname);
      }
      specs.push({ url, replicas, clusters: { version, primary: name, replicas: replicaClusters } });
    }
  } catch (e) {
    drop();
    throw e;
  }
  return { specs, drop };
}
