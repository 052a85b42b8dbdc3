// The in-process Redis (ioredis-mock) made durable the way Redis is with `appendonly yes`: every
// write command is appended to an AOF before its reply reaches the caller; a rewrite dumps the
// keyspace to a snapshot and starts the next AOF generation; a start loads the snapshot, then
// replays every AOF generation from the snapshot's on, cutting off a frame a kill tore.

import { createReadStream, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open as openFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';
import { AppendOnlyFile } from './append-only-file.ts';
import { FILE_MODE, makePrivateDir } from './data-dir.ts';
import { simError, type SimError } from '../engine/errors.ts';
import type { CounterHandle, Metrics } from '../observability/metrics.ts';

/**
 * Commands that change data and replay to the same result (no expiry, no randomness, string
 * arguments). A write command missing here and from UNSUPPORTED would bypass the AOF, so callers
 * of the client must stay within these and the read commands.
 */
const WRITE_COMMANDS: ReadonlySet<string> = new Set([
  'del', 'unlink', 'set', 'mset', 'append', 'incr', 'incrby', 'decr', 'decrby',
  'lpush', 'rpush', 'lpushx', 'rpushx', 'lpop', 'rpop', 'lset', 'ltrim', 'lrem', 'linsert', 'lmove', 'rpoplpush',
  'sadd', 'srem', 'smove', 'hset', 'hmset', 'hsetnx', 'hdel', 'hincrby', 'zadd', 'zrem', 'zincrby', 'zremrangebyrank', 'zremrangebyscore',
]);

/**
 * Commands refused outright: transactions and scripts (their writes would not pass through here),
 * writes that expire or pick at random (a replay would not reproduce them), whole-keyspace wipes,
 * and the generic senders that could carry any of these.
 */
const UNSUPPORTED: ReadonlySet<string> = new Set([
  'multi', 'pipeline', 'exec', 'eval', 'evalsha', 'fcall', 'call', 'callBuffer', 'sendCommand', 'defineCommand',
  'expire', 'pexpire', 'expireat', 'pexpireat', 'persist', 'setex', 'psetex', 'getex', 'getset', 'getdel', 'setnx',
  'spop', 'srandmember', 'rename', 'renamenx', 'copy', 'move', 'restore', 'flushall', 'flushdb', 'swapdb',
  'sort', 'sinterstore', 'sunionstore', 'sdiffstore', 'zunionstore', 'zinterstore', 'zdiffstore', 'zrangestore',
  'setrange', 'setbit', 'bitop', 'bitfield', 'pfadd', 'pfmerge', 'incrbyfloat', 'hincrbyfloat',
  'blpop', 'brpop', 'brpoplpush', 'blmove', 'lmpop', 'blmpop', 'zpopmin', 'zpopmax', 'bzpopmin', 'bzpopmax', 'xadd',
]);

/** First line of a snapshot; every other line is one key: [key, type, value]. */
interface SnapshotHeader {
  format: 'scalegram-redis-dump';
  version: 1;
  /** The AOF generation that continues from this snapshot. */
  generation: number;
}

type KeyRecord =
  | [string, 'string', string]
  | [string, 'list', string[]]
  | [string, 'set', string[]]
  | [string, 'hash', Record<string, string>]
  | [string, 'zset', string[]];

/** Keys read per batch while dumping (count). */
const DUMP_BATCH = 4096;
/** Bytes gathered before one write() while writing a snapshot. */
const SNAPSHOT_WRITE_BYTES = 1 << 20;

export interface AofPolicy {
  /** A rewrite is due once the AOF is at least this big (bytes; Redis's auto-aof-rewrite-min-size is 64 MB). */
  rewriteMinBytes: number;
  /** … and at least this many times the last snapshot's size (Redis's auto-aof-rewrite-percentage 100 = 1). */
  rewriteGrowth: number;
}

export const DEFAULT_AOF_POLICY: AofPolicy = { rewriteMinBytes: 64 * 2 ** 20, rewriteGrowth: 1 };

const SNAPSHOT_FILE = 'dump.jsonl';
const AOF_FILE = /^appendonly\.(\d+)\.aof$/;
const aofName = (generation: number) => `appendonly.${generation}.aof`;

type Command = [string, ...string[]];
type RedisMethod = (...args: string[]) => Promise<unknown>;

interface HeldWrite {
  command: Command;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface OpenReport {
  /** Keys loaded from the snapshot (count). */
  snapshotKeys: number;
  /** Commands replayed from the AOF (count). */
  replayedCommands: number;
  /** Bytes cut off AOF files: torn or damaged frames (bytes). */
  droppedBytes: number;
}

export class PersistentRedis {
  /** The client to use: write commands go through the AOF; reads go straight to the mock. */
  readonly client: Redis;
  private aof: AppendOnlyFile;
  private generation: number;
  private snapshotSize: number;
  /** Commands run since the last flush, written as one frame before any of their replies is seen. */
  private unflushed: Command[] = [];
  /** Set while a rewrite reads the keyspace: writes wait here, in order, so the dump is one instant. */
  private held: HeldWrite[] | null = null;
  private rewriting: Promise<void> | null = null;
  private failure: SimError | null = null;
  private closed = false;
  private readonly rewrites: CounterHandle;
  private readonly flushes: CounterHandle;

  private constructor(
    private readonly dir: string,
    private readonly raw: Redis,
    private readonly node: string,
    private readonly metrics: Metrics,
    private readonly policy: AofPolicy,
    aof: AppendOnlyFile,
    generation: number,
    snapshotSize: number,
  ) {
    this.aof = aof;
    this.generation = generation;
    this.snapshotSize = snapshotSize;
    this.rewrites = metrics.counter('redis_aof_rewrites', { node });
    this.flushes = metrics.counter('redis_aof_flushes', { node });
    // One wrapper per method name, made on first use (a fan-out calls LPUSH thousands of times a turn).
    const wrappers = new Map<string | symbol, unknown>();
    this.client = new Proxy(raw, {
      get: (target, prop) => {
        const known = wrappers.get(prop);
        if (known !== undefined) return known;
        let wrapper: unknown;
        if (typeof prop === 'string' && WRITE_COMMANDS.has(prop)) {
          wrapper = (...args: unknown[]) => this.write(prop, args);
        } else if (typeof prop === 'string' && (UNSUPPORTED.has(prop) || (prop.endsWith('Buffer') && (WRITE_COMMANDS.has(prop.slice(0, -6)) || UNSUPPORTED.has(prop.slice(0, -6)))))) {
          wrapper = () => {
            throw simError('SG_ERR_INVALID_PARAM', `${prop} is not supported by the persistent in-process Redis (its effect could not be replayed from the AOF)`, { command: prop });
          };
        } else {
          const value = Reflect.get(target, prop, target) as unknown;
          if (typeof value !== 'function') return value;
          const method = value as (...a: unknown[]) => unknown;
          // A read first writes out what it could see, so no reader sees a write the file lacks.
          wrapper = (...args: unknown[]) => {
            this.flush();
            return method.apply(target, args);
          };
        }
        wrappers.set(prop, wrapper);
        return wrapper;
      },
    });
    this.publish();
  }

  /**
   * Loads `dir`'s snapshot and AOF generations into `raw` (an empty mock) and returns the store
   * writing to the newest generation. Creates `dir` (0700) when missing.
   */
  static async open(dir: string, raw: Redis, deps: { metrics: Metrics; node: string; policy?: Partial<AofPolicy> }): Promise<{ redis: PersistentRedis; report: OpenReport }> {
    makePrivateDir(dir);
    const m = deps.metrics;
    m.describe('redis_aof_bytes', 'Bytes in the in-process Redis AOF since its last rewrite, by node');
    m.describe('redis_aof_rewrites', 'AOF rewrites (snapshot + new generation) of the in-process Redis, by node');
    m.describe('redis_aof_flushes', 'Frames appended to the in-process Redis AOF (one per batch of commands), by node');
    const report: OpenReport = { snapshotKeys: 0, replayedCommands: 0, droppedBytes: 0 };
    const snapshotPath = join(dir, SNAPSHOT_FILE);
    let generation = 0;
    let snapshotSize = 0;
    if (existsSync(snapshotPath)) {
      const loaded = await loadSnapshot(snapshotPath, raw);
      generation = loaded.generation;
      report.snapshotKeys = loaded.keys;
      snapshotSize = statSync(snapshotPath).size;
    }
    const generations = readdirSync(dir)
      .map((name) => AOF_FILE.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
    // Generations before the snapshot's are in it already: a rewrite died before deleting them.
    for (const g of generations) if (g < generation) rmSync(join(dir, aofName(g)), { force: true });
    const replay = generations.filter((g) => g >= generation);
    if (replay.length === 0) replay.push(generation);
    let writer: AppendOnlyFile | null = null;
    let failed = 0;
    for (const g of replay) {
      // A frame at a time: an AOF can hold millions of commands (a seeded population's feeds).
      const opened = await AppendOnlyFile.openAsync(join(dir, aofName(g)), async (payload) => {
        const commands = JSON.parse(payload.toString('utf8')) as Command[];
        // The mock applies a command when it is called; the replies only say whether it was refused.
        for (const r of await Promise.all(commands.map((c) => callRaw(raw, c).then(() => 0, () => 1)))) failed += r;
        report.replayedCommands += commands.length;
      });
      report.droppedBytes += opened.droppedBytes;
      if (writer) writer.close();
      writer = opened.file;
    }
    // A command the original run had refused is refused again; anything else is a damaged file.
    if (failed > 0) m.inc('redis_aof_refused_on_replay', { node: deps.node }, failed);
    const redis = new PersistentRedis(dir, raw, deps.node, m, { ...DEFAULT_AOF_POLICY, ...deps.policy }, writer!, replay[replay.length - 1]!, snapshotSize);
    return { redis, report };
  }

  /** Bytes in the current AOF generation. */
  get aofBytes(): number {
    return this.aof.bytes;
  }

  /** True when the AOF has grown enough to be worth a rewrite (AofPolicy). */
  rewriteDue(): boolean {
    return this.aof.bytes >= Math.max(this.policy.rewriteMinBytes, this.policy.rewriteGrowth * this.snapshotSize);
  }

  /**
   * Dumps the keyspace at one instant (writes wait meanwhile: the dump reads the mock only, so
   * they wait for CPU work, not I/O), moves writes to the next AOF generation, then writes the
   * snapshot beside the old one and renames it into place. A kill at any step leaves files that
   * load to the same data: the old snapshot with every generation since, or the new with its own.
   */
  rewrite(): Promise<void> {
    this.rewriting ??= this.runRewrite().finally(() => {
      this.rewriting = null;
    });
    return this.rewriting;
  }

  private async runRewrite(): Promise<void> {
    if (this.failure) throw this.failure;
    this.flush();
    this.held = [];
    let records: KeyRecord[];
    const next = this.generation + 1;
    try {
      records = await dumpKeyspace(this.raw);
      rmSync(join(this.dir, aofName(next)), { force: true });
      const opened = AppendOnlyFile.open(join(this.dir, aofName(next)), () => {});
      this.aof.close();
      this.aof = opened.file;
      this.generation = next;
    } finally {
      const held = this.held;
      this.held = null;
      for (const h of held) this.execute(h.command).then(h.resolve, h.reject);
    }
    const path = join(this.dir, SNAPSHOT_FILE);
    const header: SnapshotHeader = { format: 'scalegram-redis-dump', version: 1, generation: next };
    await writeSnapshot(path + '.tmp', header, records);
    await rename(path + '.tmp', path);
    this.snapshotSize = statSync(path).size;
    for (const name of readdirSync(this.dir)) {
      const match = AOF_FILE.exec(name);
      if (match && Number(match[1]) < next) rmSync(join(this.dir, name), { force: true });
    }
    this.rewrites.inc();
    this.publish();
  }

  /** Writes a snapshot if the AOF holds anything (a restart then only loads it) and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.rewriting) await this.rewriting.catch(() => undefined);
    this.flush();
    if (this.aof.bytes > 0 && !this.failure) await this.rewrite();
    this.closed = true;
    this.aof.close();
  }

  private write(name: string, args: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(simError('SG_ERR_NODE_DOWN', `${this.node} is closed`, { node: this.node }));
    if (this.failure) return Promise.reject(this.failure);
    const command: Command = [name];
    for (const a of args) {
      if (typeof a === 'string') {
        command.push(a);
        continue;
      }
      // ioredis also takes arrays of arguments, and field/value objects for HSET and MSET.
      const more = Array.isArray(a) ? a.flat() : a !== null && typeof a === 'object' && !Buffer.isBuffer(a) ? Object.entries(a).flat() : [a];
      for (const v of more) {
        if (typeof v === 'string') command.push(v);
        else if (typeof v === 'number' && Number.isFinite(v)) command.push(String(v));
        else return Promise.reject(simError('SG_ERR_INVALID_PARAM', `${name}: the persistent in-process Redis takes string and number arguments only`, { command: name }));
      }
    }
    if (this.held) {
      return new Promise((resolve, reject) => this.held!.push({ command, resolve, reject }));
    }
    return this.execute(command);
  }

  /**
   * Records the command, runs it, and lets its reply through only after the record is in the file.
   * The mock applies a command when it is called, so file order is apply order; commands issued in
   * the same turn share one frame (group commit), written by whichever reply settles first.
   */
  private execute(command: Command): Promise<unknown> {
    this.unflushed.push(command);
    return callRaw(this.raw, command).then(this.afterReply, this.afterError);
  }

  private readonly afterReply = (reply: unknown): unknown => {
    this.flush();
    return reply;
  };

  private readonly afterError = (err: unknown): never => {
    this.flush();
    throw err;
  };

  private flush(): void {
    if (this.unflushed.length === 0) return;
    if (this.failure) throw this.failure;
    const batch = this.unflushed;
    this.unflushed = [];
    try {
      this.aof.append(JSON.stringify(batch));
    } catch (err) {
      // As Redis refuses writes once it cannot append (MISCONF), so does this node from now on.
      this.failure = simError('SG_ERR_NODE_DOWN', `${this.node}: the AOF could not be written (${(err as Error).message}); writes are refused`, { node: this.node });
      this.metrics.inc('redis_aof_failures', { node: this.node });
      throw this.failure;
    }
    this.flushes.inc();
    this.publish();
  }

  private publish(): void {
    this.metrics.set('redis_aof_bytes', { node: this.node }, this.aof.bytes);
  }
}

function callRaw(raw: Redis, command: Command): Promise<unknown> {
  const [name, ...args] = command;
  const method = (raw as unknown as Record<string, RedisMethod | undefined>)[name];
  if (typeof method !== 'function') return Promise.reject(new Error(`unknown command ${name}`));
  return method.apply(raw, args);
}

/** Every key with its value, read between two turns of nothing else writing (the caller holds writes). */
async function dumpKeyspace(raw: Redis): Promise<KeyRecord[]> {
  const keys = (await raw.keys('*')).sort();
  const out: KeyRecord[] = [];
  for (let i = 0; i < keys.length; i += DUMP_BATCH) {
    const batch = keys.slice(i, i + DUMP_BATCH);
    const types = await Promise.all(batch.map((k) => raw.type(k)));
    const values = await Promise.all(
      batch.map((k, j): Promise<KeyRecord | null> => {
        switch (types[j]) {
          case 'string':
            return raw.get(k).then((v) => (v === null ? null : [k, 'string', v]));
          case 'list':
            return raw.lrange(k, 0, -1).then((v) => [k, 'list', v]);
          case 'set':
            return raw.smembers(k).then((v) => [k, 'set', v.sort()]);
          case 'hash':
            return raw.hgetall(k).then((v) => [k, 'hash', v]);
          case 'zset':
            return raw.zrange(k, 0, -1, 'WITHSCORES').then((v) => [k, 'zset', v]);
          case 'none':
            return Promise.resolve(null);
          default:
            throw simError('SG_ERR_INVALID_PARAM', `key ${k} has type ${types[j]}, which the persistent in-process Redis cannot snapshot`, { key: k });
        }
      }),
    );
    for (const v of values) if (v) out.push(v);
  }
  return out;
}

async function writeSnapshot(path: string, header: SnapshotHeader, records: KeyRecord[]): Promise<void> {
  const file = await openFile(path, 'w', FILE_MODE);
  try {
    await file.chmod(FILE_MODE);
    let parts: string[] = [JSON.stringify(header)];
    let size = 0;
    for (const r of records) {
      const line = JSON.stringify(r);
      parts.push(line);
      size += line.length;
      if (size >= SNAPSHOT_WRITE_BYTES) {
        await file.write(parts.join('\n') + '\n');
        parts = [];
        size = 0;
      }
    }
    if (parts.length > 0) await file.write(parts.join('\n') + '\n');
  } finally {
    await file.close();
  }
}

async function loadSnapshot(path: string, raw: Redis): Promise<{ generation: number; keys: number }> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let header: SnapshotHeader | null = null;
  let keys = 0;
  const bad = (why: string) => simError('SG_ERR_CONFIG_INVALID', `${path} is not a snapshot this version can load: ${why}`, { path });
  for await (const line of lines) {
    if (line.length === 0) continue;
    if (!header) {
      const h = JSON.parse(line) as Partial<SnapshotHeader>;
      if (h.format !== 'scalegram-redis-dump' || h.version !== 1 || !Number.isInteger(h.generation)) throw bad('unknown header');
      header = h as SnapshotHeader;
      continue;
    }
    const [key, type, value] = JSON.parse(line) as KeyRecord;
    await raw.del(key);
    if (typeof value === 'object' && Object.keys(value).length === 0) continue; // Redis has no empty containers
    if (type === 'string') await raw.set(key, value);
    else if (type === 'list') await raw.rpush(key, ...value);
    else if (type === 'set') await raw.sadd(key, ...value);
    else if (type === 'hash') await raw.hset(key, value);
    else if (type === 'zset') await raw.zadd(key, ...value.flatMap((_, i) => (i % 2 === 0 ? [value[i + 1]!, value[i]!] : [])));
    else throw bad(`key ${key} has unknown type ${String(type)}`);
    keys++;
  }
  if (!header) throw bad('empty');
  return { generation: header.generation, keys };
}
