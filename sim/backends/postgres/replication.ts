// Real Postgres streaming replication for the photo service's database tier: WAL positions (to count
// stale reads: a replica shows a write once its replay position reaches the LSN read after the
// write's COMMIT; see CommitLog for how exact that is), replica lag
// made real (recovery_min_apply_delay), paused replay, a cut stream (a partition between primary and
// replica), failover (crash the primary, promote its replica) and the count of writes a failover lost.
//
// Everything acts on real clusters (pg_lsn positions, ALTER SYSTEM, pg_promote, pg_ctlcluster), so a
// failover's losses are what Postgres lost, not a model of it.
//
// What PostgreSQL 15 does, as measured by test/pg-replication.test.ts (Debian's 15.20, pairs made by
// local-stack's createPrimary/createReplica, primary crashed with stop -m immediate before promotion):
//  (a) WAL the replica received but had not replayed IS APPLIED at promotion, not lost. Replay paused:
//      11 commits received (receive 0/30035B0) but not replayed (replay 0/3002D70), promoted: recovery
//      ended at 0/30035B0 and all 11 rows were there. Held by recovery_min_apply_delay = 1 h: 13
//      commits received but not applied, promoted in 103 ms (the delay is not waited out), all 13 rows
//      there. Postgres' source says why: on a promote request the startup process still "finish[es]
//      replaying as much as we can from archive and pg_wal before failover" (xlogrecovery.c), and the
//      apply-delay wait breaks out on it. So what a failover keeps is what the replica had RECEIVED
//      (flushed to its pg_wal), max(receiveLsn, replayLsn); in all three runs promote's endLsn (where
//      recovery ended) was exactly that.
//  (b) WAL never received is lost: 9 writes replayed before the stream was cut, 37 written after it,
//      primary crashed, replica promoted: 9 rows, 0 of the 37, and CommitLog.lostAfter(max(receive,
//      replay)) said 37 (by shard exactly as written). The promoted node takes writes on its new
//      timeline at once.
//  (c) pg_promote works while replay is paused (since PG 14 the pause ends on a promote request):
//      pg_promote(true, 60) returned true and the node left recovery, replaying the held WAL first (a).
// Two consequences the tier has to live with, also measured: while the startup process is held (replay
// paused, or a commit waiting out its apply delay) it does not act on a changed primary_conninfo, so
// setStreaming stops the WAL receiver by signal (see there); and a restored stream resumes only after
// the commits held by the apply delay are applied (6025 ms after a commit held by a 6000 ms delay;
// 23 ms with no delay). Not tested: the stack's replicas have no replication slot and wal_keep_size is
// 0, so a cut outliving the primary's next checkpoints can leave the replica unable to resume
// ("requested WAL segment has already been removed"); setStreaming(true) then runs out of its budget.

import { execFile } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import pg from 'pg';
import { simError, type ErrorCode } from '../../engine/errors.ts';

/** How long a wait for Postgres to report a state may take before it is a reported failure (ms). */
const WAIT_BUDGET_MS = 30_000;
/** Between two polls of that state (ms): each poll is one cheap query. */
const POLL_MS = 20;
/** How long a WAL receiver may outlive primary_conninfo = '' before it is stopped by signal (ms; see setStreaming). */
const RECEIVER_GRACE_MS = 500;

const TWO_32 = 2 ** 32;
/** The high half of an LSN below which X * 2^32 + Y is exact in a double (2^53). */
const MAX_HIGH = 2 ** 21;

/** 'X/Y' (pg_lsn text) → a number: X * 2^32 + Y (exact below 2^53, i.e. 8 PiB of WAL). */
export function parseLsn(text: string): number {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(typeof text === 'string' ? text : '');
  if (!m) throw simError('SG_ERR_INVALID_PARAM', `"${String(text)}" is not an LSN (X/Y in hex)`, { lsn: text });
  const high = parseInt(m[1]!, 16);
  if (high >= MAX_HIGH) throw simError('SG_ERR_INVALID_PARAM', `LSN ${text} is past 2^53 bytes of WAL: not exact as a number`, { lsn: text });
  return high * TWO_32 + parseInt(m[2]!, 16);
}

/** The inverse of parseLsn, in upper-case hex as Postgres prints it ('0/3000148'). */
export function formatLsn(lsn: number): string {
  if (!Number.isSafeInteger(lsn) || lsn < 0) throw simError('SG_ERR_INVALID_PARAM', `${lsn} is not an LSN (a whole number of bytes, 0 … 2^53)`, { lsn });
  return `${Math.floor(lsn / TWO_32).toString(16).toUpperCase()}/${(lsn % TWO_32).toString(16).toUpperCase()}`;
}

/**
 * A query's failure as a SimError: the server refused the statement (a primary asked for replay, a
 * replica for its insert position, a user who may not ALTER SYSTEM) is SG_ERR_INVALID_PARAM, the pool
 * pointing at the wrong kind of server; no answer (refused, reset, shutting down: SQLSTATE classes 08
 * and 57) is SG_ERR_BACKEND_UNREACHABLE.
 */
function failure(err: unknown, what: string): Error {
  const e = err as { code?: unknown; message?: unknown };
  const sqlstate = err instanceof pg.DatabaseError && typeof e.code === 'string' ? e.code : undefined;
  const message = `${what}: ${String(e?.message ?? err)}`;
  if (sqlstate !== undefined && !/^(08|57)/.test(sqlstate)) return simError('SG_ERR_INVALID_PARAM', message, { sqlstate });
  return simError('SG_ERR_BACKEND_UNREACHABLE', message, { code: typeof e?.code === 'string' ? e.code : undefined });
}

async function row<R extends pg.QueryResultRow>(pool: pg.Pool, sql: string, what: string, params: unknown[] = []): Promise<R> {
  let r: pg.QueryResult<R>;
  try {
    r = await pool.query<R>(sql, params);
  } catch (err) {
    throw failure(err, what);
  }
  if (r.rows.length !== 1) throw simError('SG_ERR_BACKEND_UNREACHABLE', `${what}: ${r.rows.length} rows where one was expected`, {});
  return r.rows[0]!;
}

async function exec(pool: pg.Pool, sql: string, what: string): Promise<void> {
  try {
    await pool.query(sql);
  } catch (err) {
    throw failure(err, what);
  }
}

/** Polls `probe` until it returns true, within `budgetMs`; running out is `code` with `what` it waited for. */
async function until(what: string, probe: () => Promise<boolean>, code: ErrorCode = 'SG_ERR_BUDGET_EXHAUSTED', budgetMs = WAIT_BUDGET_MS): Promise<void> {
  const start = performance.now();
  for (;;) {
    if (await probe()) return;
    const waitedMs = performance.now() - start;
    if (waitedMs > budgetMs) throw simError(code, `waited ${Math.round(waitedMs)} ms for ${what}`, { waitedMs: Math.round(waitedMs) });
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function reload(pool: pg.Pool, setting: string, value: string): Promise<void> {
  await exec(pool, `ALTER SYSTEM SET ${setting} = ${pg.escapeLiteral(value)}`, `ALTER SYSTEM SET ${setting}`);
  await row(pool, 'SELECT pg_reload_conf()', 'pg_reload_conf()');
}

/** The primary's WAL insert position (pg_current_wal_insert_lsn). */
export async function primaryLsn(pool: pg.Pool): Promise<number> {
  const r = await row<{ lsn: string }>(pool, 'SELECT pg_current_wal_insert_lsn()::text AS lsn', 'reading the primary WAL position');
  return parseLsn(r.lsn);
}

export interface ReplicaPosition {
  /** pg_last_wal_receive_lsn(): WAL received and flushed (null if none since start). */
  receiveLsn: number | null;
  /** pg_last_wal_replay_lsn(). */
  replayLsn: number;
  /** pg_get_wal_replay_pause_state() <> 'not paused' ('pause requested' counts: replay is stopping). */
  paused: boolean;
  /** The current recovery_min_apply_delay in ms. */
  applyDelayMs: number;
  /** A row in pg_stat_wal_receiver with status 'streaming'. */
  streaming: boolean;
  /** pg_is_in_recovery(): false once promoted. */
  inRecovery: boolean;
}

/**
 * Where a replica is. Also answers on a promoted replica (its receive and replay positions stay where
 * recovery ended, inRecovery false); on a server that never was in recovery replay is NULL, and that
 * is SG_ERR_INVALID_PARAM (not a replica).
 */
export async function replicaPosition(pool: pg.Pool): Promise<ReplicaPosition> {
  const r = await row<{ receive: string | null; replay: string | null; pause: string; delay: string; streaming: boolean; rec: boolean }>(
    pool,
    `SELECT pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay,
            CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE 'not paused' END AS pause,
            (SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay') AS delay,
            EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS streaming,
            pg_is_in_recovery() AS rec`,
    'reading the replica position',
  );
  if (r.replay === null) throw simError('SG_ERR_INVALID_PARAM', 'not a replica: this server never replayed WAL (pg_last_wal_replay_lsn() is NULL)', {});
  return {
    receiveLsn: r.receive === null ? null : parseLsn(r.receive),
    replayLsn: parseLsn(r.replay),
    paused: r.pause !== 'not paused',
    applyDelayMs: Number(r.delay),
    streaming: r.streaming,
    inRecovery: r.rec,
  };
}

/**
 * Real replication lag: ALTER SYSTEM SET recovery_min_apply_delay = '<ms>ms' and pg_reload_conf();
 * resolves once SHOW reports it. 0 sets it to 0 (no delay).
 */
export async function setApplyDelay(pool: pg.Pool, ms: number): Promise<void> {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > 2_147_483_647) throw simError('SG_ERR_INVALID_PARAM', `apply delay ${ms} ms: a whole number of ms, 0 … 2^31-1`, { ms });
  await reload(pool, 'recovery_min_apply_delay', `${ms}ms`);
  await until(`recovery_min_apply_delay to read ${ms} ms`, async () => {
    const r = await row<{ ms: string }>(pool, "SELECT setting AS ms FROM pg_settings WHERE name = 'recovery_min_apply_delay'", 'reading recovery_min_apply_delay');
    return Number(r.ms) === ms;
  });
}

/**
 * pg_wal_replay_pause()/pg_wal_replay_resume(); resolves once pg_get_wal_replay_pause_state() says
 * 'paused' (or 'not paused'). Postgres pauses between records or while waiting for WAL, not during a
 * commit's apply delay, so a pause asked while recovery_min_apply_delay holds a commit is reached when
 * the delay ends (the wait's budget grows by the delay).
 */
export async function setReplayPaused(pool: pg.Pool, paused: boolean): Promise<void> {
  const delayMs = paused ? (await replicaPosition(pool)).applyDelayMs : 0;
  await row(pool, paused ? 'SELECT pg_wal_replay_pause()' : 'SELECT pg_wal_replay_resume()', paused ? 'pausing replay' : 'resuming replay');
  const want = paused ? 'paused' : 'not paused';
  await until(`pg_get_wal_replay_pause_state() to say '${want}'`, async () => {
    const r = await row<{ state: string }>(pool, 'SELECT pg_get_wal_replay_pause_state() AS state', 'reading the replay pause state');
    return r.state === want;
  }, 'SG_ERR_BUDGET_EXHAUSTED', WAIT_BUDGET_MS + delayMs);
}

/**
 * Cuts (on=false) or restores (on=true) the replica's WAL stream, a network partition between primary
 * and replica. Cut: remember SHOW primary_conninfo, ALTER SYSTEM SET primary_conninfo = '' and
 * reload, resolve once pg_stat_wal_receiver has no row. Postgres stops the WAL receiver for a changed
 * conninfo only when its startup process next waits for WAL; while that process is held (replay
 * paused, or a commit held by recovery_min_apply_delay) the receiver keeps streaming (measured: still
 * streaming 30 s after the reload, its log saying "WAL receiver process shutdown requested"), and
 * pg_terminate_backend() refuses it ("not a PostgreSQL backend process"). So a receiver still there
 * RECEIVER_GRACE_MS after the reload is sent SIGTERM, once its pid is known to be that replica's
 * walreceiver on this machine (its /proc cwd is the server's data_directory); it flushes what it
 * received and exits, and the startup process, reading primary_conninfo = '', starts no other.
 *
 * Restore: set `conninfo` (what the cut returned; without it, the conninfo in effect) back and
 * reload, resolve once streaming. The startup process starts a receiver only when it wants WAL:
 * while replay is paused never (so that is refused, SG_ERR_INVALID_PARAM: resume first), and after a
 * cut only once it has replayed all it holds, so commits held by recovery_min_apply_delay apply
 * first (the wait's budget grows by the delay). A replica whose primary does not answer is
 * SG_ERR_BACKEND_UNREACHABLE after the budget. Returns the conninfo that was in effect before.
 */
export async function setStreaming(pool: pg.Pool, on: boolean, conninfo?: string): Promise<string> {
  const before = (await row<{ primary_conninfo: string }>(pool, 'SHOW primary_conninfo', 'reading primary_conninfo')).primary_conninfo;
  if (!on) {
    if (before !== '') await reload(pool, 'primary_conninfo', '');
    let reloadedAt: number | null = null;
    await until('the WAL receiver to stop (pg_stat_wal_receiver empty)', async () => {
      const r = await row<{ pid: number | null; conninfo: string; dir: string }>(
        pool,
        "SELECT (SELECT pid FROM pg_stat_wal_receiver) AS pid, current_setting('primary_conninfo') AS conninfo, current_setting('data_directory') AS dir",
        'reading pg_stat_wal_receiver',
      );
      if (r.conninfo !== '') return false;
      if (r.pid === null) return true;
      reloadedAt ??= performance.now();
      if (performance.now() - reloadedAt >= RECEIVER_GRACE_MS) stopReceiver(r.pid, r.dir);
      return false;
    });
    return before;
  }
  const target = conninfo ?? before;
  if (target === '') throw simError('SG_ERR_INVALID_PARAM', 'no primary_conninfo to restore: pass the one setStreaming(pool, false) returned', {});
  const pos = await replicaPosition(pool);
  if (target === before && pos.streaming) return before;
  if (pos.paused) throw simError('SG_ERR_INVALID_PARAM', 'replay is paused: Postgres starts the WAL receiver only when replay wants WAL; resume replay first (setReplayPaused(pool, false))', {});
  if (target !== before) await reload(pool, 'primary_conninfo', target);
  await until(
    'the replica to stream from its primary (pg_stat_wal_receiver status streaming); is the primary up?',
    async () => (await row<{ s: boolean }>(pool, "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS s", 'reading pg_stat_wal_receiver')).s,
    'SG_ERR_BACKEND_UNREACHABLE',
    WAIT_BUDGET_MS + pos.applyDelayMs,
  );
  return before;
}

/** SIGTERM to a replica's walreceiver, after checking that `pid` is one and serves the data directory `dir` here. */
function stopReceiver(pid: number, dir: string): void {
  let cwd: string;
  let cmdline: string;
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // exited meanwhile
    throw simError('SG_ERR_INVALID_PARAM', `the WAL receiver (pid ${pid}) keeps streaming while the replica's replay is held, and this process cannot inspect it to stop it: ${(err as Error).message}`, { pid });
  }
  if (cwd !== dir || !cmdline.includes('walreceiver')) {
    throw simError('SG_ERR_INVALID_PARAM', `the WAL receiver (pid ${pid}) keeps streaming while the replica's replay is held, and it is not a process of this machine (pid ${pid} here serves ${cwd}, not ${dir})`, { pid });
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw simError('SG_ERR_INVALID_PARAM', `cannot stop the WAL receiver (pid ${pid}): ${(err as Error).message}`, { pid });
  }
}

function clusterArgs(version: string, name: string): void {
  if (!/^\d+$/.test(version) || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw simError('SG_ERR_INVALID_PARAM', `"${version}" "${name}" is not a Postgres version and cluster name`, { version, name });
  }
}

/**
 * pg_ctlcluster <version> <name> stop -m immediate (a crash: no shutdown checkpoint, the stream ends
 * where it is) or -m fast (a clean stop). Pools connected to it see an 'error' event on each idle
 * connection: their owners should listen for it.
 */
export async function stopCluster(version: string, name: string, mode: 'immediate' | 'fast'): Promise<void> {
  clusterArgs(version, name);
  if (mode !== 'immediate' && mode !== 'fast') throw simError('SG_ERR_INVALID_PARAM', `stop mode "${String(mode)}": immediate or fast`, { mode });
  await runAsync('pg_ctlcluster', [version, name, 'stop', '-m', mode], `stopping Postgres cluster ${name} (${mode})`);
}

/** pg_ctlcluster <version> <name> start (seconds: it waits for the server to accept connections). */
export async function startCluster(version: string, name: string): Promise<void> {
  clusterArgs(version, name);
  await runAsync('pg_ctlcluster', [version, name, 'start'], `starting Postgres cluster ${name}`);
}

/**
 * A command run without blocking the event loop (a server calls these from its admin API: a start
 * takes seconds, and the server keeps answering meanwhile).
 */
function runAsync(cmd: string, args: string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      if (!err) return resolve();
      reject(simError('SG_ERR_BACKEND_UNREACHABLE', `${what} failed: ${cmd} ${args.join(' ')}: ${(stderr || stdout || err.message).trim()}`, { command: cmd }));
    });
  });
}

/**
 * Promotes a replica whose primary is gone: reads the position it holds (receive and replay LSN)
 * first, then SELECT pg_promote(true, timeoutS), and resolves once pg_is_in_recovery() is false.
 * Returns the positions read before promotion (WAL past max(receiveLsn, replayLsn) was never on the
 * replica and is lost) and endLsn, where recovery ended (pg_last_wal_replay_lsn() after promotion,
 * which stays put): the exact point past which the old primary's WAL is lost, also when WAL still
 * arrived between the read and the promotion.
 */
export async function promote(pool: pg.Pool, timeoutS = 60): Promise<{ receiveLsn: number | null; replayLsn: number; endLsn: number }> {
  if (!Number.isSafeInteger(timeoutS) || timeoutS < 1 || timeoutS > 2_147_483_647) throw simError('SG_ERR_INVALID_PARAM', `promotion timeout ${timeoutS} s: a whole number of seconds, at least 1`, { timeoutS });
  const before = await row<{ rec: boolean; receive: string | null; replay: string | null }>(
    pool,
    'SELECT pg_is_in_recovery() AS rec, pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay',
    'reading the replica position before promotion',
  );
  if (!before.rec || before.replay === null) throw simError('SG_ERR_INVALID_PARAM', 'not a replica in recovery: nothing to promote', {});
  const ok = await row<{ ok: boolean }>(pool, 'SELECT pg_promote(true, $1::int) AS ok', 'pg_promote()', [timeoutS]);
  if (!ok.ok) throw simError('SG_ERR_BUDGET_EXHAUSTED', `the replica did not finish promotion within ${timeoutS} s`, { timeoutS });
  await until('pg_is_in_recovery() to be false after promotion', async () => !(await row<{ rec: boolean }>(pool, 'SELECT pg_is_in_recovery() AS rec', 'reading pg_is_in_recovery()')).rec);
  const after = await row<{ replay: string }>(pool, 'SELECT pg_last_wal_replay_lsn()::text AS replay', 'reading where recovery ended');
  return { receiveLsn: before.receive === null ? null : parseLsn(before.receive), replayLsn: parseLsn(before.replay), endLsn: parseLsn(after.replay) };
}

/** What lostAfter reports: the notes past a position, by shard; complete false when notes dropped for the size bound could be among them. */
export interface LostWrites {
  writes: number;
  byShard: Map<number, number>;
  complete: boolean;
}

/**
 * A record of committed writes, for counting the writes a failover lost: note(lsn, shardId, atMs) per
 * committed write, with the primary's insert position read after COMMIT returned. That position is
 * at or past the end of the commit record (past it by whatever other sessions wrote meanwhile, or by
 * a 24-byte page header when the record ended on an 8 KiB page boundary), so a replica whose replay
 * position reaches a note surely has the write; with concurrent writers, a replica that stopped in
 * that gap has a write its note counts as lost.
 *
 * Notes are kept in LSN order (writers on several connections note slightly out of order; a note
 * is inserted where it belongs). forget(upTo) drops the notes every replica has; past `limit` notes
 * the oldest are dropped and counted, and lostAfter says when its count may miss some.
 */
export class CommitLog {
  readonly limit: number;
  private readonly lsns: number[] = [];
  private readonly shards: number[] = [];
  private readonly ats: number[] = [];
  /** Index of the first live note in the arrays (dropped ones before it are compacted away in bulk). */
  private head = 0;
  private droppedNotes = 0;
  /** The highest LSN among notes dropped for the size bound (-1: none). */
  private droppedMaxLsn = -1;

  /** `limit`: notes kept at most (default 1,000,000: ~24 MB; 100 s of 10,000 writes/s not yet on every replica). */
  constructor(limit = 1_000_000) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw simError('SG_ERR_INVALID_PARAM', `commit log limit ${limit}: a whole number of notes, at least 1`, { limit });
    this.limit = limit;
  }

  get size(): number {
    return this.lsns.length - this.head;
  }

  /** Notes dropped for the size bound, ever. */
  get dropped(): number {
    return this.droppedNotes;
  }

  note(lsn: number, shardId: number, atMs: number): void {
    if (!Number.isSafeInteger(lsn) || lsn < 0) throw simError('SG_ERR_INVALID_PARAM', `note: LSN ${lsn} is not a whole number of bytes`, { lsn });
    if (!Number.isSafeInteger(shardId) || shardId < 0) throw simError('SG_ERR_INVALID_PARAM', `note: shard ${shardId} is not a shard number`, { shardId });
    if (!Number.isFinite(atMs)) throw simError('SG_ERR_INVALID_PARAM', `note: time ${atMs} ms is not a time`, { atMs });
    const n = this.lsns.length;
    if (n === this.head || this.lsns[n - 1]! <= lsn) {
      this.lsns.push(lsn);
      this.shards.push(shardId);
      this.ats.push(atMs);
    } else {
      const i = this.firstAfter(lsn);
      this.lsns.splice(i, 0, lsn);
      this.shards.splice(i, 0, shardId);
      this.ats.splice(i, 0, atMs);
    }
    if (this.size > this.limit) {
      this.droppedMaxLsn = Math.max(this.droppedMaxLsn, this.lsns[this.head]!);
      this.droppedNotes++;
      this.head++;
      this.compact();
    }
  }

  /** The writes noted past `lsn` (a promoted replica's endLsn, or max(receive, replay) read before promotion): lost in that failover. */
  lostAfter(lsn: number): LostWrites {
    const byShard = new Map<number, number>();
    const from = this.firstAfter(lsn);
    for (let i = from; i < this.lsns.length; i++) byShard.set(this.shards[i]!, (byShard.get(this.shards[i]!) ?? 0) + 1);
    return { writes: this.lsns.length - from, byShard, complete: lsn >= this.droppedMaxLsn };
  }

  /**
   * atMs of the first write in WAL order past `lsn`, or null: a replica at `lsn` lacks it, so now
   * minus this is the replica's real lag in ms. When notes past `lsn` were dropped for the size
   * bound it is the first kept one, and the lag it gives is a lower bound.
   */
  oldestAfter(lsn: number): number | null {
    const i = this.firstAfter(lsn);
    return i < this.lsns.length ? this.ats[i]! : null;
  }

  /** Drops the notes at or below `upTo`: every replica has replayed them. */
  forget(upTo: number): void {
    this.head = this.firstAfter(upTo);
    this.compact();
  }

  /** Index of the first live note with an LSN above `lsn` (the arrays' length when none). */
  private firstAfter(lsn: number): number {
    let lo = this.head;
    let hi = this.lsns.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lsns[mid]! <= lsn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Removes dropped notes from the arrays once they are at least half of them (amortised O(1) a note). */
  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.lsns.length) return;
    this.lsns.splice(0, this.head);
    this.shards.splice(0, this.head);
    this.ats.splice(0, this.head);
    this.head = 0;
  }
}
