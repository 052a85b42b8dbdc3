// memcached as the cache tier: one real memcached process per cache node, each reached by its own
// client (memjs, the binary protocol, one connection per node so a delete and a later get from this
// process arrive in order), with the project's ketama ring (parts/ketama.ts, the ring the simulator
// uses) choosing the node in CacheCluster. Processes this module starts (`--memcached local`) can be
// killed and started again by the admin API's faults; nodes at addresses someone else runs cannot.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import memjs from 'memjs';
import { simError } from '../engine/errors.ts';
import type { RemoteCacheNode, RemoteCacheStats } from '../parts/cache-cluster.ts';

/** The memcached program `local` tiers start ($MEMCACHED_BIN, else memcached on the PATH). */
export const MEMCACHED_BINARY = process.env.MEMCACHED_BIN || 'memcached';

/** How long a connection may take to open (ms). */
const OP_TIMEOUT_MS = 500;
/** How long an operation waits for its node before it counts as unreachable (ms; see MemcachedNode.call). */
const OP_DEADLINE_MS = 2 * OP_TIMEOUT_MS;

/** Whether an error says the node is not there (a network failure), not that it refused one request. */
export function unreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') return true;
  return /timed out|timeout|ECONN|EPIPE|socket|connection|closed/i.test(String(e?.message ?? ''));
}

/** Parses `host:port` (port required), refusing anything else with SG_ERR_INVALID_PARAM. */
export function parseAddress(text: string): { host: string; port: number } {
  // host:port with a host name or an IPv4 address (memjs cannot reach a bracketed IPv6 address).
  const m = /^([^\s:[\]]+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw simError('SG_ERR_INVALID_PARAM', `memcached address "${text}" is not host:port`, { address: text });
  }
  return { host: m[1]!, port };
}

/** A free TCP port on 127.0.0.1 (asked of the kernel; free when this returns). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const started = process.hrtime.bigint();
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host, port });
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Number(process.hrtime.bigint() - started) / 1e6 > timeoutMs) throw simError('SG_ERR_BACKEND_UNREACHABLE', `memcached at ${host}:${port} did not start listening within ${timeoutMs} ms`, { address: `${host}:${port}` });
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A memcached process that kill and revive can act on. */
export interface MemcachedControl {
  readonly address: string;
  readonly pid: number | null;
  /** SIGKILL; resolves once it has exited. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty (no-op while it runs). */
  restart(): Promise<void>;
}

/** memcached's arguments for a node on 127.0.0.1:port with memoryMb of item memory. */
function memcachedArgs(port: number, memoryMb: number): string[] {
  // -U 0: no UDP. -t 2: two threads (this is a test bed, not a 2012 server). Runs as root only
  // when we are root (memcached refuses root without -u).
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', String(memoryMb), '-t', '2', '-c', '1024'];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  return args;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A memcached daemon (`memcached -d -P PIDFILE`) that outlives whoever started it: the processes of
 * `scalegram stack up`. Any process that knows its pid file can kill it and start it again.
 */
export class MemcachedDaemon implements MemcachedControl {
  constructor(
    readonly port: number,
    readonly memoryMb: number,
    readonly pidFile: string,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * The daemon's pid, when its pid file names a live memcached started with that pid file (memcached
   * leaves the file behind when killed, and the pid may since belong to another process).
   */
  get pid(): number | null {
    if (!existsSync(this.pidFile)) return null;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    if (!(Number.isInteger(pid) && pid > 0 && pidAlive(pid))) return null;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return /memcached$/.test(argv[0] ?? '') && argv.includes(this.pidFile) ? pid : null;
    } catch {
      return null; // gone meanwhile, or no /proc: not known to be ours
    }
  }

  /** Starts it (daemonized) and waits until it listens. */
  async start(): Promise<void> {
    if (this.pid !== null) return;
    const r = spawnSync(MEMCACHED_BINARY, ['-d', '-P', this.pidFile, ...memcachedArgs(this.port, this.memoryMb)], { encoding: 'utf8', timeout: 10_000 });
    if (r.error || r.status !== 0) {
      throw simError('SG_ERR_BACKEND_UNREACHABLE', `could not start memcached (${MEMCACHED_BINARY}) on port ${this.port}: ${r.error?.message ?? (r.stderr || `exit ${r.status}`).trim()}`, { port: this.port });
    }
    await waitForPort('127.0.0.1', this.port, 5000);
    // The daemon writes its pid file after it forks, not always before it listens.
    for (let i = 0; i < 250 && this.pid === null; i++) await new Promise((r) => setTimeout(r, 20));
    if (this.pid === null) throw simError('SG_ERR_BACKEND_UNREACHABLE', `memcached on port ${this.port} listens but wrote no pid file (${this.pidFile})`, { port: this.port });
  }

  async kill(): Promise<void> {
    const pid = this.pid;
    if (pid === null) return;
    process.kill(pid, 'SIGKILL');
    while (pidAlive(pid)) await new Promise((r) => setTimeout(r, 10));
  }

  restart(): Promise<void> {
    return this.start();
  }
}

/** A memcached process this process started, on 127.0.0.1 and a port of its own. */
export class MemcachedProcess implements MemcachedControl {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly memoryMb: number,
  ) {}

  /** Starts memcached on a free port with `memoryMb` of item memory, and waits until it listens. */
  static async start(memoryMb: number): Promise<MemcachedProcess> {
    const p = new MemcachedProcess(await freePort(), memoryMb);
    await p.launch();
    return p;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get running(): boolean {
    return this.child !== null;
  }

  private async launch(): Promise<void> {
    const child = spawn(MEMCACHED_BINARY, memcachedArgs(this.port, this.memoryMb), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 2000) stderr += d.toString();
    });
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (err) => reject(simError('SG_ERR_BACKEND_UNREACHABLE', `could not start memcached (${MEMCACHED_BINARY}): ${err.message}; install it (Debian: apt-get install memcached) or give addresses with --memcached HOST:PORT,…`, { binary: MEMCACHED_BINARY })));
      child.once('exit', (code, signal) => reject(simError('SG_ERR_BACKEND_UNREACHABLE', `memcached on port ${this.port} exited at start (${signal ?? `code ${code}`}): ${stderr.trim()}`, { port: this.port })));
    });
    failed.catch(() => {});
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    // A process killed with SIGKILL cannot stop its children: a watchdog (detached, polling once a
    // second) kills this memcached once this process is gone, and ends by itself once memcached is.
    if (child.pid !== undefined) {
      const dog = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`], { detached: true, stdio: 'ignore' });
      dog.on('error', () => {});
      dog.unref();
    }
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    try {
      await Promise.race([waitForPort('127.0.0.1', this.port, 5000), failed]);
    } catch (err) {
      // One that never listened is not left running.
      child.kill('SIGKILL');
      await this.exited;
      throw err;
    }
  }

  /** SIGKILL, as a crash would: its items are gone. Resolves once the process has exited. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** Starts it again on the same port, empty. */
  async restart(): Promise<void> {
    if (this.child) return;
    await this.launch();
  }
}

/** One memcached node's client (memjs, one connection), and its process if this one started it. */
export class MemcachedNode implements RemoteCacheNode {
  private readonly client: memjs.Client;

  /**
   * `prefix` goes before every key on the wire (not on the ring, which hashes the key itself): the
   * deployment's namespace, so two deployments sharing memcached processes (a stack's) never read
   * each other's entries.
   */
  constructor(
    readonly address: string,
    private readonly process: MemcachedControl | null = null,
    private readonly prefix = '',
  ) {
    parseAddress(address);
    this.client = memjs.Client.create(address, {
      retries: 0,
      // memjs's own request timer would fire before a late loop reads the answer: ours decides (call()).
      timeout: 30,
      conntimeout: OP_TIMEOUT_MS / 1000,
      keepAlive: true,
      // memjs logs each failure to the console; the cluster counts them instead.
      logger: { log: () => {} },
    });
  }

  get controllable(): boolean {
    return this.process !== null;
  }

  get pid(): number | null {
    return this.process?.pid ?? null;
  }

  /**
   * Runs `op`; a failure to reach the node becomes SG_ERR_BACKEND_UNREACHABLE (what CacheCluster
   * acts on). memjs forgets requests in flight when the server closes the connection without an
   * error (a killed memcached's FIN): it cancels their timeout and never calls them back. So each
   * operation has a deadline of its own; past it, the connection's requests are failed through
   * memjs's own error path (which also drops their callbacks).
   */
  private async call<T>(what: string, op: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const running = op().finally(() => (settled = true));
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Timers run before the poll phase: after a blocked event loop this fires before the answer
        // already waiting in the socket is read. Give the poll phase one turn before giving up.
        setImmediate(() => {
          if (settled) return;
          const err = Object.assign(new Error(`no answer within ${OP_DEADLINE_MS} ms`), { code: 'ETIMEDOUT' });
          for (const server of this.client.servers) (server as unknown as { error?: (e: Error) => void }).error?.(err);
          reject(err);
        });
      }, OP_DEADLINE_MS);
    });
    deadline.catch(() => {});
    try {
      return await Promise.race([running, deadline]);
    } catch (err) {
      if (unreachable(err)) throw simError('SG_ERR_BACKEND_UNREACHABLE', `memcached at ${this.address} did not answer (${what}): ${(err as Error).message || String(err)}`, { address: this.address });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async get(key: string): Promise<string | undefined> {
    const { value } = await this.call('get', () => this.client.get(this.prefix + key));
    return value === null ? undefined : value.toString('utf8');
  }

  /**
   * The binary protocol's gets, all written at once on the node's connection (one round trip's
   * worth of waiting, as a multiget), answered in order.
   */
  async getMany(keys: readonly string[]): Promise<Map<string, string>> {
    const values = await this.call('get', () => Promise.all(keys.map((k) => this.client.get(this.prefix + k))));
    const found = new Map<string, string>();
    values.forEach(({ value }, i) => {
      if (value !== null) found.set(keys[i]!, value.toString('utf8'));
    });
    return found;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    // memcached expiries are whole seconds; a gutter's short expiry rounds up, never to 0 (forever).
    const expires = ttlMs > 0 && Number.isFinite(ttlMs) ? Math.max(1, Math.ceil(ttlMs / 1000)) : 0;
    await this.call('set', () => this.client.set(this.prefix + key, value, { expires }));
  }

  async delete(key: string): Promise<void> {
    await this.call('delete', () => this.client.delete(this.prefix + key));
  }

  async flush(): Promise<void> {
    await this.call(
      'flush',
      () =>
        new Promise<void>((resolve, reject) => {
          this.client.flush((err) => (err ? reject(err) : resolve()));
        }),
    );
  }

  async stats(): Promise<RemoteCacheStats> {
    const s = await this.call(
      'stats',
      () =>
        new Promise<Record<string, string>>((resolve, reject) => {
          this.client.stats((err, _server, stats) => (err ? reject(err) : resolve((stats ?? {}) as Record<string, string>)));
        }),
    );
    const n = (k: string) => Number(s[k] ?? 0);
    return { items: n('curr_items'), bytes: n('bytes'), capacityBytes: n('limit_maxbytes'), evictions: n('evictions'), getHits: n('get_hits'), getMisses: n('get_misses'), pid: n('pid') };
  }

  async kill(): Promise<void> {
    if (!this.process) throw notOurs(this.address);
    await this.process.kill();
  }

  async revive(): Promise<void> {
    if (!this.process) throw notOurs(this.address);
    await this.process.restart();
  }

  /** Closes the client; a process started by this one is killed with it (a stack's daemon is not). */
  async close(): Promise<void> {
    this.client.close();
    if (this.process instanceof MemcachedProcess) await this.process.kill();
  }
}

function notOurs(address: string) {
  return simError('SG_ERR_INVALID_PARAM', `memcached at ${address} was not started by this process or by scalegram stack up, so it cannot kill or start it: stop or start that memcached yourself (the cache counts its keys as dead while it does not answer, and flushes it when it answers again)`, { address });
}

/** A node of `scalegram stack up`: a daemon on 127.0.0.1 whose pid file says which process it is. */
export interface StackMemcached {
  address: string;
  pidFile: string;
  memoryMb: number;
}

/** `local` (processes started here), or one node per entry: an address, or a stack's daemon. */
export type MemcachedSpec = 'local' | readonly (string | StackMemcached)[];

/** The item memory (MiB, at least 1) for a node of `capacityBytes`. */
export function memoryMbFor(capacityBytes: number): number {
  return Math.max(1, Math.ceil(capacityBytes / (1024 * 1024)));
}

/**
 * The cache tier's nodes on memcached: `local` starts one process per node (ring nodes, then the
 * gutter pool) on free ports of this machine; a list gives one `host:port` per node, in the same
 * order. The tier is fixed at start: a node taken off the ring can come back, a new one cannot join.
 */
export class MemcachedTier {
  private readonly nodes = new Map<string, MemcachedNode>();

  private constructor(
    readonly local: boolean,
    /** Before every key on the wire (see MemcachedNode). */
    readonly prefix: string,
  ) {}

  /** `prefix`: before every key on the wire (the deployment's namespace; see MemcachedNode). */
  static async open(spec: MemcachedSpec, names: readonly string[], capacityBytes: number, prefix = ''): Promise<MemcachedTier> {
    const mb = memoryMbFor(capacityBytes);
    if (spec !== 'local') {
      if (spec.length !== names.length) {
        throw simError('SG_ERR_CONFIG_INVALID', `the topology has ${names.length} memcached node(s) (${names.join(', ')}) but ${spec.length} address(es) were given; give one host:port per node, in that order`, { nodes: names, addresses: spec });
      }
      for (const a of spec) parseAddress(typeof a === 'string' ? a : a.address);
    }
    const tier = new MemcachedTier(spec === 'local', prefix);
    try {
      for (let i = 0; i < names.length; i++) {
        if (spec === 'local') {
          const proc = await MemcachedProcess.start(mb);
          tier.nodes.set(names[i]!, new MemcachedNode(proc.address, proc, prefix));
        } else {
          const a = spec[i]!;
          tier.nodes.set(names[i]!, typeof a === 'string' ? new MemcachedNode(a, null, prefix) : new MemcachedNode(a.address, new MemcachedDaemon(parseAddress(a.address).port, a.memoryMb, a.pidFile), prefix));
        }
      }
    } catch (err) {
      await tier.close();
      throw err;
    }
    return tier;
  }

  /** The client of node `name` (one the tier was opened with). */
  node(name: string): MemcachedNode {
    const known = this.nodes.get(name);
    if (known) return known;
    throw simError('SG_ERR_INVALID_PARAM', `no memcached node "${name}" in this tier (have ${[...this.nodes.keys()].join(', ')})`, { node: name });
  }

  describe(): Array<{ name: string; address: string; pid: number | null; controllable: boolean }> {
    return [...this.nodes].map(([name, n]) => ({ name, address: n.address, pid: n.pid, controllable: n.controllable }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.close()));
  }
}
