// Moving one logical shard (one schema, `shard_0042`) from one real Postgres server to another
// while it keeps taking writes, by Postgres's built-in logical replication (PG15's
// `CREATE PUBLICATION … FOR TABLES IN SCHEMA`). The protocol, as the caller drives it:
//
//   1. PgShardCopy.start: on the destination, the shard's tables are made empty at the current
//      migration (migrate(), so its record row is right too); the source publishes the schema and
//      the destination subscribes with copy_data. Postgres then copies each table under its own
//      snapshot (a table-sync worker per table, two at a time by default) and streams every change
//      committed after that snapshot, so writes to the source go on through the copy.
//   2. synced(): every table of the subscription is 'r' (ready) in pg_subscription_rel: the copy
//      is done and the destination follows the source's changes as they commit.
//   3. The caller stops writes to the shard (they wait), then finish(): the source's WAL position
//      at that moment is the target; once the destination has confirmed it applied everything up
//      to it (pg_stat_replication's replay_lsn of the subscription's walsender or the slot's
//      confirmed_flush_lsn, whichever is further), the destination holds every committed write.
//      finish() then moves the sequences forward and returns the stats.
//   4. The caller repoints the shard to the destination and lets writes go on there; close(true)
//      drops the subscription (and with it its slot on the source) and the publication;
//      dropShard(source) removes what the source no longer holds. An aborted move calls
//      close(false), which also drops the destination's copy (no one read it: the shard was never
//      switched there).
//
// Why logical replication, and not dump/restore or a physical copy: a physical replica copies a
// whole server, not one schema; a dump is a snapshot, and writes after it would be lost unless the
// shard stopped for the whole copy. Logical replication copies one schema and streams its later
// changes, so the shard stops only for finish()'s catch-up, which waits for changes already sent.
// Measured by test/pg-shard-move.test.ts on the shared 2-core machine, PG15: ~22,700 rows in 21
// tables synced in 0.3-1.0 s (six runs, the machine busy in some) while a writer made 1,000-2,800
// inserts, updates and deletes; the catch-up after the writer stopped took 1-4 ms.
//
// Timing facts that bound a move (PG15, measured there too):
//  - CREATE SUBSCRIPTION makes the slot on the source, and the slot waits for every transaction
//    running there that holds a transaction id to end. One left open ("idle in transaction")
//    would hang start(): it is cancelled at timeoutMs (statement_timeout) and start() fails.
//  - The destination's logical replication launcher starts apply workers at most once per
//    wal_retrieve_retry_interval (5 s by default) across all subscriptions: a move begun within
//    5 s of the previous one's start on the same destination waits out the rest. The test's
//    second and third moves of a shard synced in ~5.3 s, in ~0.4 s with the interval at 200 ms.
//    Moving many shards to one server in a row, lower it there (a reload is enough).
//
// What logical replication does not carry, checked against PG15 (the test checks each, DDL by its guard):
//  - Sequences. `FOR TABLES IN SCHEMA` publishes tables only (sequence replication was taken out
//    of PG15 before release), so the destination's `id_seq` stays where migrate() left it while
//    the source's advances. next_id() mints ids from it, and ids minted on the destination after
//    the switch must not repeat the source's: finish() sets each destination sequence to at least
//    the source's (setval), after the writes stopped, so nothing advances the source's after.
//  - DDL. The destination's tables come from migrate(), not from the source; a migration run on
//    one side during a move makes the two differ (an added column's values would not apply). So
//    start() and finish() refuse when the two schemas' recorded versions differ: do not migrate a
//    shard while it moves.
//  - UPDATE and DELETE need a replica identity: once a table is in a publication that publishes
//    them, the source itself refuses an UPDATE or DELETE of a table with none ("cannot update
//    table … because it does not have a replica identity and publishes updates"), so a keyless
//    table would break the live shard's writes, not just the copy. Every table schema.ts declares
//    has a primary key (the default replica identity), so none needs REPLICA IDENTITY FULL; start()
//    checks anyway and refuses, naming the table, if a future migration adds one without (a FULL
//    identity would make the destination match each change by a scan of the whole table).
//  - A streaming replica of the destination needs nothing: the subscription's apply worker writes
//    ordinary WAL on the destination, which its replicas replay like any other write (the test
//    compares the replica with the source row for row). The subscription's catalog row reaches
//    them too (pg_subscription is a shared catalog), but apply workers do not run on a standby.
//
// Names: the publication, subscription and slot are `sg_move_0042`, from the shard number; every
// name spliced into SQL comes from shardSchema() or the catalog (quoted), never from a caller's
// text. The one text of the caller's that reaches SQL, the source's conninfo, is a quoted literal.
//
// A failed move can leave a subscription on the destination, a publication and slot on the
// source and a partial copy of the schema on the destination. start() removes such leftovers of an
// earlier move of the same shard before it begins. It drops a destination schema only if it is a
// copy a move made and did not finish (marked by a comment start() writes and finish() clears) or
// holds no row: a schema holding rows without the mark may be the shard's live home, and is
// refused. The mark goes in finish(), before the caller can switch, so a move driver that crashes
// after its switch and runs the move again is refused rather than dropping the shard's new home;
// one that crashed between finish() and the switch is refused too, and its copy is dropped by
// hand (dropShard). Moves of one shard must not overlap: the caller (the shard map's owner) runs one at a
// time.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { simError } from '../../engine/errors.ts';
import { MIGRATIONS_TABLE, migrate, schemaVersions } from './migrations.ts';
import { shardSchema } from './schema.ts';

export interface PgEndpoint {
  /** A pool on the server (database scalegram). */
  pool: pg.Pool;
  /** libpq conninfo by which the DESTINATION server reaches this server ('host=127.0.0.1 port=5433 user=postgres dbname=scalegram'). */
  conninfo: string;
  /** For messages: 'db-0'. */
  name: string;
}

export interface ShardCopyStats {
  /** Rows in the destination's copy when finish() returned (every table, counted). */
  rowsCopied: number;
  /** Tables in the subscription. */
  tables: number;
  /** From the subscription's creation to every table ready. */
  syncMs: number;
  /** finish()'s wait for the destination to apply what the source had written. */
  catchUpMs: number;
  /** The source LSN the copy caught up to, as a number (high 32 bits × 2^32 + low). */
  lsn: number;
}

export interface ShardCopyOptions {
  progress?: (line: string) => void;
  /** Bound of each wait (the subscription's creation, the sync, the catch-up, a close); default 120 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const POLL_MS = 50;

/** Written on the destination's copy of the schema while a move is under way: it may be dropped. */
const COPY_MARK = 'scalegram shard move: an incoming copy, not yet switched to';

/**
 * libpq conninfo from a postgres:// URL: postgres://user:pass@host:port/db?sslmode=require →
 * `host='host' port='5433' user='user' password='pass' dbname='db' sslmode='require'`. Each value
 * single-quoted with \ and ' escaped, as libpq reads them; query parameters pass through as keywords.
 */
export function conninfoOf(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw simError('SG_ERR_INVALID_PARAM', `${JSON.stringify(url)} is not a URL (postgres://user@host:port/db)`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw simError('SG_ERR_INVALID_PARAM', `${JSON.stringify(url)} is not a postgres:// URL`);
  const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const parts: string[] = [];
  const add = (k: string, v: string) => {
    if (v !== '') parts.push(`${k}=${quote(v)}`);
  };
  add('host', decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1'));
  add('port', u.port);
  add('user', decodeURIComponent(u.username));
  add('password', decodeURIComponent(u.password));
  add('dbname', decodeURIComponent(u.pathname.replace(/^\//, '')));
  for (const [k, v] of u.searchParams) {
    if (!/^[a-z_]+$/.test(k)) throw simError('SG_ERR_INVALID_PARAM', `${JSON.stringify(k)} in ${url} is not a libpq keyword`);
    add(k, v);
  }
  return parts.join(' ');
}

/** `sg_move_0042`: the publication, subscription and slot of shard 42's move. */
function moveName(shardId: number): string {
  return `sg_move_${shardSchema(shardId).slice('shard_'.length)}`;
}

/** An LSN 'X/Y' (hex) as a number: X·2^32 + Y (exact below 2^53, some 8 PB of WAL). */
export function lsnNumber(lsn: string): number {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn);
  if (!m) throw simError('SG_ERR_SHARD_MOVE', `${JSON.stringify(lsn)} is not a Postgres LSN`);
  return parseInt(m[1]!, 16) * 2 ** 32 + parseInt(m[2]!, 16);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function moveError(message: string, details?: Record<string, unknown>): Error {
  return simError('SG_ERR_SHARD_MOVE', message, details);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function one<T extends pg.QueryResultRow>(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await pool.query<T>(sql, params);
  return rows[0]!;
}

async function schemaExists(pool: pg.Pool, schema: string): Promise<boolean> {
  return (await one<{ n: number }>(pool, 'SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [schema])).n > 0;
}

/** The ordinary tables of `schema`, by name, with whether each has a replica identity. */
async function tablesOf(pool: pg.Pool, schema: string): Promise<Array<{ name: string; identity: boolean }>> {
  const { rows } = await pool.query<{ name: string; identity: boolean }>(
    `SELECT c.relname AS name,
            c.relreplident = 'f' OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
              OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)) AS identity
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
    [schema],
  );
  return rows;
}

/**
 * The last lines of the server's log that speak of logical replication or an error, when the
 * server can read its own log: pg_current_logfile() with the logging collector, else Debian's
 * /var/log/postgresql/postgresql-<version>-<cluster>.log (cluster_name is '<version>/<cluster>'
 * under pg_createcluster). A bonus for error messages: '' when neither is readable.
 */
async function logTail(pool: pg.Pool, lines = 6): Promise<string> {
  try {
    const r = await one<{ current: string | null; cluster: string; dir: string }>(pool, "SELECT pg_current_logfile() AS current, current_setting('cluster_name') AS cluster, current_setting('data_directory') AS dir");
    let path = r.current;
    if (path && !path.startsWith('/')) path = `${r.dir}/${path}`;
    if (!path) {
      const m = /^(\d+)\/(.+)$/.exec(r.cluster);
      if (!m) return '';
      path = `/var/log/postgresql/postgresql-${m[1]}-${m[2]}.log`;
    }
    const size = await one<{ size: string | null }>(pool, 'SELECT (pg_stat_file($1, true)).size::text AS size', [path]);
    if (size.size === null) return '';
    const from = Math.max(0, Number(size.size) - 32_768);
    const text = await one<{ t: string | null }>(pool, 'SELECT pg_read_file($1, $2, 32768, true) AS t', [path, from]);
    const wanted = (text.t ?? '')
      .split('\n')
      .filter((l) => /ERROR|FATAL|logical replication|sg_move_/.test(l))
      .slice(-lines);
    return wanted.length ? `; the server log (${path}) ends: ${wanted.map((l) => l.trim()).join(' | ')}` : '';
  } catch {
    return '';
  }
}

/** The subscription's error counts (pg_stat_subscription_stats, PG15), for messages. */
async function subscriptionErrors(pool: pg.Pool, name: string): Promise<string> {
  try {
    const { rows } = await pool.query<{ apply: string; sync: string }>('SELECT apply_error_count::text AS apply, sync_error_count::text AS sync FROM pg_stat_subscription_stats WHERE subname = $1', [name]);
    const r = rows[0];
    return r ? `; ${r.apply} apply and ${r.sync} table-sync worker error(s) so far` : '';
  } catch {
    return '';
  }
}

/**
 * Drops subscription `name` on `dst` and its slot on the publisher. DROP SUBSCRIPTION connects
 * to the publisher to drop the slot; when that fails (the publisher is gone or the slot is), the
 * subscription is detached from its slot (slot_name = NONE) and dropped alone, and `srcPool`, when
 * given, drops the slot and the table-sync slots (pg_<subscription oid>_sync_…) itself.
 */
async function dropSubscription(dst: pg.Pool, name: string, srcPool: pg.Pool | null, timeoutMs: number): Promise<void> {
  const sub = (await dst.query<{ oid: number }>('SELECT oid FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())', [name])).rows[0];
  if (sub) {
    try {
      // Bounded: DROP SUBSCRIPTION waits for the publisher's walsenders of its slots to let go.
      await withStatementTimeout(dst, timeoutMs, (c) => c.query(`DROP SUBSCRIPTION IF EXISTS ${name}`));
    } catch (err) {
      await dst.query(`ALTER SUBSCRIPTION ${name} DISABLE`);
      await dst.query(`ALTER SUBSCRIPTION ${name} SET (slot_name = NONE)`);
      await dst.query(`DROP SUBSCRIPTION IF EXISTS ${name}`);
      if (!srcPool) throw err;
    }
  }
  if (srcPool) await dropSlots(srcPool, name, sub?.oid ?? null, timeoutMs);
}

/** `fn` on one connection of `pool` whose statements are cancelled after `ms` (for statements that cannot run in a transaction, so SET LOCAL cannot bound them). */
/**
 * A pooled client whose connection may end under it (a server stopped): pg-pool hears 'error' on
 * idle clients only, and an unheard one ends the process; the query under way fails instead.
 */
async function checkout(pool: pg.Pool): Promise<{ client: pg.PoolClient; done: (broken?: boolean) => void }> {
  const client = await pool.connect();
  const onError = () => undefined;
  client.on('error', onError);
  return {
    client,
    done: (broken = false) => {
      client.off('error', onError);
      client.release(broken);
    },
  };
}

async function withStatementTimeout<T>(pool: pg.Pool, ms: number, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const { client, done } = await checkout(pool);
  let broken = false;
  try {
    await client.query(`SET statement_timeout = ${Math.max(1, Math.round(ms))}`);
    return await fn(client);
  } finally {
    await client.query('RESET statement_timeout').catch(() => {
      broken = true;
    });
    done(broken);
  }
}

/** Drops the move's slots on the source: `name` and, for subscription `subOid`, its table-sync slots. Waits for their walsenders to let go. */
async function dropSlots(src: pg.Pool, name: string, subOid: number | null, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const pattern = subOid === null ? null : `pg\\_${subOid}\\_sync\\_%`;
  for (;;) {
    const { rows } = await src.query<{ slot_name: string; active_pid: number | null }>(
      'SELECT slot_name, active_pid FROM pg_replication_slots WHERE slot_name = $1 OR slot_name LIKE $2',
      [name, pattern ?? name],
    );
    if (rows.length === 0) return;
    for (const r of rows) {
      // A walsender still streaming from it (a subscription elsewhere a failed move left): ended, so the slot can go.
      if (r.active_pid !== null) await src.query('SELECT pg_terminate_backend($1)', [r.active_pid]);
      else await src.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NULL', [r.slot_name]);
    }
    if (performance.now() > deadline) throw moveError(`replication slot(s) ${rows.map((r) => r.slot_name).join(', ')} on the source are still in use after ${timeoutMs} ms`);
    await sleep(POLL_MS);
  }
}

/** Drops `schema` on `pool` and its record rows, in one transaction. */
async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  const { client, done } = await checkout(pool);
  try {
    await client.query('BEGIN');
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    if ((await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [MIGRATIONS_TABLE])).rows[0]?.t != null) {
      await client.query(`DELETE FROM ${MIGRATIONS_TABLE} WHERE schema_name = $1`, [schema]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    done();
  }
}

/**
 * After the switch: drops the shard's schema on a server (CASCADE) and its rows in
 * public.scalegram_migrations: what a server no longer holds. Nothing to drop is not an error.
 */
export async function dropShard(pool: pg.Pool, shardId: number): Promise<void> {
  await dropSchema(pool, shardSchema(shardId));
}

/** Whether `a` and `b` are one Postgres server: a session of `a` named at random is seen by `b`. */
async function sameServer(a: pg.Pool, b: pg.Pool): Promise<boolean> {
  const tag = `sg-move-probe-${randomBytes(8).toString('hex')}`;
  const { client, done } = await checkout(a);
  try {
    await client.query("SELECT set_config('application_name', $1, false)", [tag]);
    return (await one<{ n: number }>(b, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [tag])).n > 0;
  } finally {
    await client.query('RESET application_name').catch(() => {});
    done();
  }
}

export class PgShardCopy {
  private readonly schema: string;
  private readonly name: string;
  private readonly timeoutMs: number;
  private readonly progress: (line: string) => void;
  private readonly t0: number;
  private syncMs: number | null = null;
  private syncing: Promise<void> | null = null;
  private tableCount = 0;
  private closed = false;

  private constructor(
    private readonly src: PgEndpoint,
    private readonly dst: PgEndpoint,
    private readonly shardId: number,
    opts: ShardCopyOptions,
  ) {
    this.schema = shardSchema(shardId);
    this.name = moveName(shardId);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.progress = opts.progress ?? (() => {});
    this.t0 = performance.now();
  }

  /**
   * Begins copying logical shard `shardId` from `src` to `dst`: checks both servers, removes what
   * an earlier failed move of the shard left, makes the destination's tables (empty, at the
   * current migration), publishes the schema on the source and subscribes the destination to it.
   * Refused (SG_ERR_SHARD_MOVE) when src's wal_level is not logical, src lacks the schema or is
   * not at dst's migration, src and dst are one server, either is a standby, or dst holds rows of
   * the shard that no move put there.
   */
  static async start(src: PgEndpoint, dst: PgEndpoint, shardId: number, opts: ShardCopyOptions = {}): Promise<PgShardCopy> {
    const copy = new PgShardCopy(src, dst, shardId, opts);
    await copy.check();
    await copy.removeLeftovers();
    try {
      await copy.begin();
    } catch (err) {
      await copy.close(false).catch(() => {});
      throw err;
    }
    return copy;
  }

  private async check(): Promise<void> {
    const { src, dst, schema } = this;
    const [s, d] = await Promise.all([
      one<{ wal_level: string; recovery: boolean }>(src.pool, "SELECT current_setting('wal_level') AS wal_level, pg_is_in_recovery() AS recovery"),
      one<{ recovery: boolean }>(dst.pool, 'SELECT pg_is_in_recovery() AS recovery'),
    ]);
    if (s.recovery) throw moveError(`${src.name} is a standby (in recovery): a shard moves from its primary`, { server: src.name });
    if (d.recovery) throw moveError(`${dst.name} is a standby (in recovery): a shard moves to a primary (its replicas follow by themselves)`, { server: dst.name });
    if (s.wal_level !== 'logical') {
      throw moveError(
        `${src.name} has wal_level=${s.wal_level}; moving a shard by logical replication needs wal_level=logical: run ALTER SYSTEM SET wal_level = logical on ${src.name} and restart it (wal_level changes only at server start)`,
        { server: src.name, walLevel: s.wal_level },
      );
    }
    if (await sameServer(src.pool, dst.pool)) throw moveError(`${src.name} and ${dst.name} are the same Postgres server: a shard moves between two`, { src: src.name, dst: dst.name });
    if (!(await schemaExists(src.pool, schema))) throw moveError(`${src.name} has no schema ${schema}: it does not hold logical shard ${this.shardId}`, { server: src.name, schema });
    const keyless = (await tablesOf(src.pool, schema)).filter((t) => !t.identity).map((t) => t.name);
    if (keyless.length) {
      throw moveError(
        `${schema} on ${src.name} has table(s) without a primary key or replica identity (${keyless.join(', ')}): published, the source would refuse their UPDATEs and DELETEs. Give them a primary key (a migration) before moving the shard`,
        { tables: keyless },
      );
    }
  }

  /** What an earlier move of this shard left on either server; see the top of the file. */
  private async removeLeftovers(): Promise<void> {
    const { src, dst, schema, name } = this;
    // First what may not be dropped, so a refusal changes nothing.
    let copyOnDst: 'none' | 'empty' | 'partial' = 'none';
    if (await schemaExists(dst.pool, schema)) {
      const mark = await one<{ c: string | null }>(dst.pool, "SELECT obj_description(oid, 'pg_namespace') AS c FROM pg_namespace WHERE nspname = $1", [schema]);
      let rows = 0;
      for (const t of await tablesOf(dst.pool, schema)) {
        rows += (await one<{ n: number }>(dst.pool, `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${schema}.${pg.escapeIdentifier(t.name)} LIMIT 1) AS x`)).n;
        if (rows > 0) break;
      }
      if (mark.c !== COPY_MARK && rows > 0) {
        throw moveError(
          `${dst.name} already holds rows of ${schema}, and no unfinished move put them there: it may be the shard's home. If that copy is stale, dropShard() it on ${dst.name} first`,
          { server: dst.name, schema },
        );
      }
      copyOnDst = rows > 0 ? 'partial' : 'empty';
    }
    const subs = (await one<{ n: number }>(dst.pool, 'SELECT count(*)::int AS n FROM pg_subscription WHERE subname = $1', [name])).n;
    if (subs > 0) this.progress(`${schema}: dropping subscription ${name} an earlier move left on ${dst.name}`);
    await dropSubscription(dst.pool, name, src.pool, this.timeoutMs);
    const pubs = (await one<{ n: number }>(src.pool, 'SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1', [name])).n;
    if (pubs > 0) {
      this.progress(`${schema}: dropping publication ${name} an earlier move left on ${src.name}`);
      await src.pool.query(`DROP PUBLICATION IF EXISTS ${name}`);
    }
    await dropSlots(src.pool, name, null, this.timeoutMs);
    if (copyOnDst !== 'none') this.progress(`${schema}: dropping the ${copyOnDst === 'partial' ? 'partial copy' : 'empty schema'} an earlier move left on ${dst.name}`);
    await dropSchema(dst.pool, schema); // also a record row left without its schema
  }

  private async begin(): Promise<void> {
    const { src, dst, schema, name } = this;
    await migrate(dst.pool, [this.shardId]);
    await dst.pool.query(`COMMENT ON SCHEMA ${schema} IS ${pg.escapeLiteral(COPY_MARK)}`);
    await this.checkVersions('start');
    this.tableCount = (await tablesOf(src.pool, schema)).length;
    await src.pool.query(`CREATE PUBLICATION ${name} FOR TABLES IN SCHEMA ${schema}`);
    // CREATE SUBSCRIPTION makes the slot on the source, which waits for the source's transactions
    // running at that moment to end: bounded, so a transaction left open there fails the start
    // instead of hanging it.
    try {
      await withStatementTimeout(dst.pool, this.timeoutMs, (c) =>
        c.query(`CREATE SUBSCRIPTION ${name} CONNECTION ${pg.escapeLiteral(src.conninfo)} PUBLICATION ${name} WITH (copy_data = true)`),
      );
    } catch (err) {
      throw moveError(`${dst.name} could not subscribe to ${schema} on ${src.name} (conninfo ${JSON.stringify(redact(src.conninfo))}): ${messageOf(err)}`, { src: src.name, dst: dst.name });
    }
    this.progress(`${schema}: ${src.name} publishes ${this.tableCount} tables as ${name}; ${dst.name} subscribes and copies them`);
  }

  /** Refuses when the two schemas' recorded migrations differ (DDL does not replicate). */
  private async checkVersions(when: string): Promise<void> {
    const [[s], [d]] = await Promise.all([schemaVersions(this.src.pool, [this.shardId]), schemaVersions(this.dst.pool, [this.shardId])]);
    if (s!.version !== d!.version) {
      throw moveError(
        `${this.schema} is at migration ${s!.version} on ${this.src.name} and ${d!.version} on ${this.dst.name} (at ${when}): logical replication carries no DDL, so both must be at one version; migrate ${this.src.name} first, and not during a move`,
        { src: s!.version, dst: d!.version },
      );
    }
  }

  private closedError(): Error {
    return moveError(`the move of ${this.schema} from ${this.src.name} to ${this.dst.name} is closed`);
  }

  /** Resolves when every table of the subscription is ready ('r' in pg_subscription_rel): the initial copy is done, changes stream. */
  synced(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    this.syncing ??= this.waitSynced();
    return this.syncing;
  }

  private async waitSynced(): Promise<void> {
    const deadline = performance.now() + this.timeoutMs;
    for (;;) {
      const { rows } = await this.dst.pool.query<{ rel: string; state: string }>(
        `SELECT r.srrelid::regclass::text AS rel, r.srsubstate::text AS state FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
          WHERE s.subname = $1 ORDER BY 1`,
        [this.name],
      );
      const waiting = rows.filter((r) => r.state !== 'r');
      // Every table listed, and ready: the subscription lists the publication's tables at creation.
      if (rows.length >= this.tableCount && waiting.length === 0) {
        this.syncMs = performance.now() - this.t0;
        this.progress(`${this.schema}: copied, ${rows.length} tables ready on ${this.dst.name} after ${Math.round(this.syncMs)} ms`);
        return;
      }
      if (this.closed) throw moveError(`the move of ${this.schema} was closed before its copy was done`);
      if (performance.now() > deadline) {
        const states: Record<string, string> = { i: 'initializing', d: 'copying data', f: 'copied, finishing', s: 'synchronized', r: 'ready' };
        const named = waiting.slice(0, 8).map((r) => `${r.rel} (${states[r.state] ?? r.state})`);
        if (waiting.length > named.length) named.push(`and ${waiting.length - named.length} more`);
        // Every table still 'i': no table-sync worker ever started on the destination.
        const hint =
          waiting.length > 0 && waiting.every((r) => r.state === 'i')
            ? `; no table has begun copying: can ${this.dst.name} start table-sync workers (max_sync_workers_per_subscription, max_logical_replication_workers, max_worker_processes)?`
            : '';
        throw moveError(
          `the copy of ${this.schema} from ${this.src.name} to ${this.dst.name} was not done after ${this.timeoutMs} ms: ${rows.length} of ${this.tableCount} tables listed, not ready: ${named.join(', ') || 'none listed'}${hint}` +
            (await subscriptionErrors(this.dst.pool, this.name)) +
            (await logTail(this.dst.pool)),
          { schema: this.schema, notReady: waiting.map((r) => r.rel) },
        );
      }
      await sleep(POLL_MS);
    }
  }

  /**
   * The caller has stopped writes to the shard (they wait). Waits until dst has applied
   * everything src wrote (src's pg_current_wal_lsn() now), then sets dst's sequences (next_id's)
   * to at least src's, and returns the stats.
   */
  async finish(): Promise<ShardCopyStats> {
    if (this.closed) throw this.closedError();
    await this.synced();
    await this.checkVersions('finish');
    const { src, dst, schema, name } = this;
    const t0 = performance.now();
    const target = (await one<{ lsn: string }>(src.pool, 'SELECT pg_current_wal_lsn()::text AS lsn')).lsn;
    const targetN = lsnNumber(target);
    const deadline = t0 + this.timeoutMs;
    for (;;) {
      // The walsender's replay_lsn is what the subscriber reports as applied and flushed; the
      // slot's confirmed_flush_lsn is the same report, kept with the slot.
      const r = await one<{ replay: string | null; confirmed: string | null }>(
        src.pool,
        `SELECT (SELECT max(replay_lsn)::text FROM pg_stat_replication WHERE application_name = $1) AS replay,
                (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1) AS confirmed`,
        [name],
      );
      const reached = Math.max(r.replay ? lsnNumber(r.replay) : 0, r.confirmed ? lsnNumber(r.confirmed) : 0);
      if (reached >= targetN) break;
      if (performance.now() > deadline) {
        throw moveError(
          `${dst.name} had not applied ${schema}'s changes up to ${src.name}'s WAL position ${target} after ${this.timeoutMs} ms (it confirmed ${r.replay ?? r.confirmed ?? 'nothing'})` +
            (await subscriptionErrors(dst.pool, name)) +
            (await logTail(dst.pool)),
          { schema, target },
        );
      }
      await sleep(POLL_MS / 5);
    }
    const catchUpMs = performance.now() - t0;
    await this.copySequences();
    let rowsCopied = 0;
    const tables = await tablesOf(dst.pool, schema);
    for (const t of tables) rowsCopied += (await one<{ n: number }>(dst.pool, `SELECT count(*)::int AS n FROM ${schema}.${pg.escapeIdentifier(t.name)}`)).n;
    const stats: ShardCopyStats = { rowsCopied, tables: tables.length, syncMs: Math.round(this.syncMs ?? 0), catchUpMs: Math.round(catchUpMs), lsn: targetN };
    // A complete copy from here on: the caller may switch to it, so no later start() may drop it.
    await dst.pool.query(`COMMENT ON SCHEMA ${schema} IS NULL`);
    this.progress(`${schema}: ${dst.name} caught up to ${src.name}'s ${target} in ${stats.catchUpMs} ms; ${rowsCopied} rows in ${tables.length} tables`);
    return stats;
  }

  /** Each of the schema's sequences on dst set to at least the source's (logical replication does not carry them). */
  private async copySequences(): Promise<void> {
    const { src, dst, schema } = this;
    const { rows } = await src.pool.query<{ name: string; last: string | null }>('SELECT sequencename AS name, last_value::text AS last FROM pg_sequences WHERE schemaname = $1', [schema]);
    for (const s of rows) {
      if (s.last === null) continue; // never used on the source
      const seq = `${schema}.${pg.escapeIdentifier(s.name)}`;
      // pg_sequences.last_value is null until the first nextval: then start from the source's.
      await dst.pool.query(
        `SELECT setval($1::regclass, greatest($2::bigint, coalesce((SELECT last_value FROM pg_sequences WHERE schemaname = $3 AND sequencename = $4), $2::bigint)), true)`,
        [seq, s.last, schema, s.name],
      );
    }
  }

  /**
   * Drops the subscription (and its slot) and the publication. keep=false (an aborted move) also
   * drops dst's copy of the schema and its migrations row (keep=true without a finish() leaves a
   * copy that may be incomplete, still marked, so the next move of the shard drops it). Safe to
   * call twice and after any failure: every step is tried, and the failures are thrown after.
   */
  async close(keep: boolean): Promise<void> {
    this.closed = true;
    const { src, dst, schema, name } = this;
    const failures: string[] = [];
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        failures.push(`${what}: ${messageOf(err)}`);
      }
    };
    await step(`dropping subscription ${name} on ${dst.name}`, () => dropSubscription(dst.pool, name, src.pool, this.timeoutMs));
    await step(`dropping publication ${name} on ${src.name}`, () => src.pool.query(`DROP PUBLICATION IF EXISTS ${name}`));
    if (!keep) await step(`dropping the copy of ${schema} on ${dst.name}`, () => dropSchema(dst.pool, schema));
    if (failures.length) throw moveError(`closing the move of ${schema} from ${src.name} to ${dst.name}: ${failures.join('; ')}`, { failures });
    this.progress(`${schema}: move closed (${keep ? `${dst.name} keeps the copy` : `copy on ${dst.name} dropped`})`);
  }
}

/** A conninfo without its password, for messages. */
function redact(conninfo: string): string {
  return conninfo.replace(/password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g, 'password=***');
}
