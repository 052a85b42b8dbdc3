// `scalegram bench`: one run that measures a bare Fastify route (the ceiling) and the photo service's
// hot routes with autocannon, each target in its own process, then fan-out of one post to 1M
// followers in process. Every figure is printed next to its ratio to the ceiling of the same run,
// and each target against its own baseline measured in the same run.

import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchFanout, type FanoutResult } from '../bench/fanout.ts';
import { measure, mergeRows, multipart, type HttpRow } from '../bench/http.ts';
import { benchTier, TIER_ORDER, TIER_POPULATION } from '../bench/tier.ts';
import { readStack } from '../sim/backends/local-stack.ts';
import { redact } from '../sim/backends/amqp-queue.ts';
import { probeAmqp, probeRedis, realStack } from '../sim/backends/probe.ts';
import { benchMmc, MMC } from '../bench/mmc-vs-simpy.ts';
import { measureAppendCost } from '../bench/fsync-cost.ts';
import { compareRunnerWithAutocannon } from '../bench/runner-http.ts';
import type { VuMemory } from '../bench/vu-memory.ts';
import { ARGON2ID, hashPassword } from '../sim/domain/credentials.ts';
import { intOption, parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram bench [options]

Measures, in one run on this machine:
  1. a bare Fastify route (the ceiling) and the same route answering a warm feed page's bytes from
     a precomputed buffer, then GET feed (warm), GET media, POST like and POST media on the photo
     service, each with req/s, p50, p99 and its ratio to the ceiling (autocannon); sharp alone
     making the upload's three sizes (150/306/612) of the same JPEG, as many at once as uploads are
     in flight, in a process of its own before and after the uploads; then signups and logins (an
     Argon2id hash or check each) against the KDF alone measured in this process;
  2. the scenario runner's own HTTP path against autocannon on a bare route: a k6 script loaded as
     the runner loads it (a module per VU), once written synchronously and once with await; then
     memory per VU with 1,000 VUs of the synchronous script, each with an iteration in flight;
  3. the cost of --data-dir: POST like, follow, comment and media (a post fanned out to 201
     followers) on two targets started alike, one in memory and one with a data dir, each write
     route measured twice on each (in memory, data dir, data dir, in memory), with the ratio;
     fan-out of one post to 50,000 followers in process, the same way; and one append to the data dir's disk with and
     without an fsync after it (what power-loss durability would add per write);
  4. fan-out of one post to --followers followers on the default topology, with deliveries/s; then
     the same with the feed lists on a real Redis ($REDIS_URL, else 127.0.0.1:6379, if it answers),
     and with RabbitMQ ($AMQP_URL, else guest@127.0.0.1:5672, if it answers) as the job queue;
  5. the app tier on the real stack: scalegram serve --stack D --workers N as a child process, for
     N = 1, 2, 2, 1, each start seeded alike (2,000 accounts, 20 follows and 2 photos each; the tier
     empties the stack's tables at its start), then GET feed over 500 readers' tokens and POST media
     (640×640 JPEG, at most 8 connections), with req/s, p99 and the ratio of 2 processes to 1 (a
     measurement, no target: every part shares this machine's cores). D: --stack-dir, else the stack
     up in $SCALEGRAM_STACK_DIR (default .scalegram/stack), else one brought up in a temp directory
     for the run and taken down at its end (a minute or two more); skipped with why when this machine
     cannot run one (Debian's Postgres cluster tools and root, memcached, Redis and RabbitMQ);
  6. the simulator's discrete-event engine on an M/M/c queue (λ=8, μ=1, c=10, --customers
     customers) in customers/s, beside SimPy 2.3 on the same model (bench/mmc_simpy.py) in the
     same run when SimPy is installed (Debian: apt-get install python3-simpy), with the ratio and
     each one's mean wait against Erlang C;
  7. scalegram simulate scenarios/android-launch.ts at --simulate-scale (default: full scale, 30M
     accounts, 1M signups in 12 h of virtual time) in its own process: events, events/s, wall
     time and peak RSS;
  8. with --soak MIN: MIN minutes of steady read load through the runner (bench/soak.ts), RSS
     at start, after one minute and at the end.
Targets: warm feed ≥ 40% of the bare route answering the same bytes; POST like ≥ 10% of the
ceiling; POST media ≥ 80% of sharp alone's images/s; runner ≥ 80% of autocannon (both scripts);
memory per VU ≤ 5 MB at 1,000 VUs; fan-out to 1,000,000
followers ≤ 5 s, and ≤ 3 s on a real Redis; engine ≥ 30× SimPy's customers/s (when SimPy is installed); full-scale android-launch
simulated in ≤ 60 s of wall time and ≤ 2 GiB RSS (scalegram simulate, its own process); soak RSS at the end
within 25% of the RSS one minute in. Exit 1 if one is missed, or if a request to the app tier
failed or the tier did not start.
Only the engine row: scalegram bench --skip-http --skip-durability --followers 0 --skip-tier --simulate-scale 0
Only the app tier: scalegram bench --skip-http --skip-durability --followers 0 --customers 0 --simulate-scale 0

Options:
  --duration S      seconds per HTTP measurement (default 8)
  --connections N   concurrent connections (default 32)
  --followers N     followers for the fan-out measurement (default 1000000; 0 skips it)
  --skip-http       skip the HTTP route and runner measurements
  --skip-durability skip the --data-dir measurements
  --skip-tier       skip the app tier on the real stack
  --stack-dir D     the app tier on the stack scalegram stack up --dir D started (its tables are emptied)
  --customers N     customers for the engine's M/M/c measurement (default 200000; 0 skips it)
  --simulate-scale F  scale of the simulated android-launch (default 1: full scale, 30M accounts; 0 skips it)
  --soak MIN        also run MIN minutes of steady load through the runner and report memory (default 0: skip)
  -h, --help        show this help
`;

const TARGET = fileURLToPath(new URL('../bench/target.ts', import.meta.url));

async function startTarget(kind: string, ...args: string[]): Promise<{ child: ChildProcess; info: Record<string, unknown> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', TARGET, kind, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench target ${kind} exited with ${code} before it was ready`)));
  });
  return { child, info: JSON.parse(line) as Record<string, unknown> };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * The same fan-out on the real parts this machine has: feed lists on a real Redis (goal ≤ 3 s for
 * 1M followers), then also with RabbitMQ as the job queue; each beside the in-memory run above.
 */
async function realFanout(followers: number, inMemory: FanoutResult): Promise<boolean> {
  const { redisUrl, amqpUrl } = realStack(process.env);
  const redisDown = await probeRedis(redisUrl);
  if (redisDown) {
    process.stdout.write(`fan-out on a real Redis: skipped (${redisDown}; set REDIS_URL)\n`);
    return true;
  }
  let ok = true;
  const row = (label: string, r: FanoutResult) =>
    process.stdout.write(`fan-out, ${label}: ${r.deliveries.toLocaleString('en')} deliveries in ${(r.fanoutMs / 1000).toFixed(2)} s = ${Math.round(r.deliveriesPerS).toLocaleString('en')} deliveries/s, ${(r.deliveriesPerS / inMemory.deliveriesPerS).toFixed(2)}× the in-process Redis's\n`);
  process.stderr.write(`\nFan-out to ${followers.toLocaleString('en')} followers, feed lists on Redis at ${redisUrl}:\n`);
  const real = await benchFanout(followers, (m) => process.stderr.write(`  ${m}\n`), { redisUrl });
  row(`real Redis (${redisUrl})`, real);
  const realOk = real.allDelivered && (followers < 1_000_000 || real.fanoutMs <= 3000);
  ok &&= realOk;
  process.stdout.write(`target: fan-out to 1,000,000 followers on a real Redis ≤ 3 s … ${followers < 1_000_000 ? 'n/a (fewer followers)' : realOk ? 'PASS' : 'FAIL'}${real.allDelivered ? '' : ' (not every follower got the post!)'}\n`);
  const amqpDown = await probeAmqp(amqpUrl);
  if (amqpDown) {
    process.stdout.write(`fan-out through RabbitMQ: skipped (${amqpDown}; set AMQP_URL)\n`);
    return ok;
  }
  process.stderr.write(`\nThe same, with RabbitMQ at ${redact(amqpUrl)} as the job queue:\n`);
  const viaBroker = await benchFanout(followers, (m) => process.stderr.write(`  ${m}\n`), { redisUrl, amqpUrl });
  row('real Redis, jobs through RabbitMQ', viaBroker);
  if (!viaBroker.allDelivered) {
    ok = false;
    process.stdout.write('warning: fan-out through RabbitMQ did not reach every follower\n');
  }
  return ok;
}

/**
 * The app tier on the real stack (bench/tier.ts): feed reads and uploads with 1 and with 2 server
 * processes, and their ratio. No target (the issue gives none, and every part shares this
 * machine's cores); false when a request failed or a tier did not start.
 */
async function appTier(stackDir: string | undefined, duration: number, connections: number): Promise<boolean> {
  process.stderr.write(`\nThe app tier on the real stack: serve --workers ${TIER_ORDER.join(', ')} (each start seeded alike, then GET feed and POST media):\n`);
  const r = await benchTier({ ...(stackDir !== undefined ? { stackDir } : {}), durationS: duration, connections, progress: (m) => process.stderr.write(`  ${m}\n`) });
  if (r.outcome === 'skipped') {
    process.stdout.write(`app tier on the real stack: skipped (${r.reason})\n`);
    return true;
  }
  if (r.teardown) process.stdout.write(`warning: ${r.teardown}\n`);
  if (r.outcome === 'failed') {
    const [first, ...rest] = r.reason.split('\n');
    if (rest.length > 0) process.stderr.write(`${rest.join('\n')}\n`);
    process.stdout.write(`app tier on the real stack: FAILED (${first}${r.rounds.length ? `; after ${r.rounds.length} of ${TIER_ORDER.length} starts` : ''})\n`);
    return false;
  }
  const s = r.stack;
  const side = (n: number) => r.rounds.filter((x) => x.processes === n);
  const pad = (t: string, n: number) => t.padEnd(n);
  const p = TIER_POPULATION;
  process.stdout.write(
    `\napp tier on the real stack (${s.own ? 'brought up in' : 'the stack in'} ${s.dir}${s.own ? ' for this run, taken down after' : ''}: ${s.primaries} Postgres primaries and their replicas, ${s.memcached} memcached, Redis, RabbitMQ); ` +
      `each start seeded with ${p.users.toLocaleString('en')} accounts, ${p.avgFollows} follows and ${p.mediaPerUser} photos each; feed over ${r.readers} readers' tokens (pages of ${Math.round(r.rounds.reduce((n, x) => n + x.feed.bytes, 0) / r.rounds.length).toLocaleString('en')} bytes on average) on ${r.feedConnections} connections, uploads on ${r.uploadConnections}; ${TIER_ORDER.join(', ')} processes, in that order\n`,
  );
  process.stdout.write(`${pad('route', 34)}${'1 process'.padStart(11)}${'2 processes'.padStart(13)}${'ratio'.padStart(8)}${'p99 ms 1'.padStart(10)}${'p99 ms 2'.padStart(10)}${'errors'.padStart(8)}\n`);
  let failed = 0;
  for (const route of ['feed', 'upload'] as const) {
    const [a1, a2] = side(1).map((x) => x[route]);
    const [b1, b2] = side(2).map((x) => x[route]);
    const one = mergeRows(a1!, a2!);
    const two = mergeRows(b1!, b2!);
    const errors = one.errors + one.non2xx + two.errors + two.non2xx;
    failed += errors;
    process.stdout.write(`${pad(one.name, 34)}${one.reqPerS.toFixed(0).padStart(11)}${two.reqPerS.toFixed(0).padStart(13)}${(two.reqPerS / one.reqPerS).toFixed(2).padStart(8)}${one.p99Ms.toFixed(1).padStart(10)}${two.p99Ms.toFixed(1).padStart(10)}${String(errors).padStart(8)}\n`);
  }
  const perRound = (route: 'feed' | 'upload') => r.rounds.map((x) => x[route].reqPerS.toFixed(route === 'feed' ? 0 : 1)).join(', ');
  process.stdout.write(`(req/s of each start, ${TIER_ORDER.join(', ')} processes: feed ${perRound('feed')}; uploads ${perRound('upload')}; 1 process: the mean of its two starts, as is 2; p99 the worse of the two)\n`);
  process.stdout.write(`(requests each server process answered in the 2-process starts, warm-up and seeding included: ${side(2).map((x) => x.answered.map((n) => n.toLocaleString('en')).join(' + ')).join(' and ')})\n`);
  process.stdout.write(
    `this machine has ${availableParallelism()} cores (os.availableParallelism()), and every part shares them: Postgres ×${s.postgresClusters} clusters, ${s.memcached} memcached, Redis, RabbitMQ, the server processes and autocannon — so the ratio is what this machine can show, not the tier's ceiling\n`,
  );
  if (failed > 0) {
    process.stdout.write(`app tier on the real stack: FAILED (${failed} requests failed or answered other than 2xx)\n`);
    return false;
  }
  return true;
}

/** Runs bench/soak.ts in a child process for `minutes` of wall time, sampling its RSS. */
async function soak(minutes: number): Promise<{ startKiB: number; oneMinuteKiB: number; endKiB: number; maxKiB: number; exitCode: number | null }> {
  const bin = fileURLToPath(new URL('../bin/scalegram.mjs', import.meta.url));
  const script = fileURLToPath(new URL('../bench/soak.ts', import.meta.url));
  const out = mkdtempSync(join(tmpdir(), 'scalegram-soak-'));
  const child = spawn(process.execPath, [bin, 'run', script, '--quiet', '--seed', '1', '-e', `MINUTES=${minutes}`, '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  const samples: Array<[number, number]> = [];
  const t0 = Date.now();
  const timer = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
      if (Number.isFinite(kib)) samples.push([Date.now() - t0, kib]);
      if (samples.length % 6 === 0) process.stderr.write(`  ${((Date.now() - t0) / 60000).toFixed(1)} min: RSS ${(kib / 1024).toFixed(0)} MiB\n`);
    } catch {
      // The process is gone, or /proc is not there (not Linux): no sample.
    }
  }, 10_000);
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearInterval(timer);
  rmSync(out, { recursive: true, force: true });
  if (exitCode !== 0 && exitCode !== 99) throw new Error(`soak: the run exited with ${exitCode}`);
  if (samples.length === 0) throw new Error('soak: no memory samples (needs /proc)');
  const at = (ms: number) => samples.find(([t]) => t >= ms)?.[1] ?? samples[samples.length - 1]![1];
  return { startKiB: samples[0]![1], oneMinuteKiB: at(60_000), endKiB: samples[samples.length - 1]![1], maxKiB: Math.max(...samples.map(([, k]) => k)), exitCode };
}

/** Followers of the post whose fan-out is timed in memory and with a data dir (count). */
const DATA_DIR_FANOUT_FOLLOWERS = 50_000;

interface DataDirRow {
  name: string;
  memory: HttpRow;
  durable: HttpRow;
}

/** The same write workloads against a target in memory and one with a data dir, both seeded alike. */
async function benchDataDir(duration: number, connections: number): Promise<DataDirRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'scalegram-bench-data-'));
  const memory = await startTarget('scalegram');
  const durable = await startTarget('scalegram', join(dir, 'data'));
  try {
    // Each target gets its own counters, so both see the same sequence of new (user, media) pairs.
    const workloads = (info: Record<string, unknown>) => {
      const base = info.address as string;
      const mediaIds = info.mediaIds as string[];
      const likers = info.likers as string[];
      const likerIds = info.likerIds as string[];
      let likes = 0;
      let follows = 0;
      let comments = 0;
      const { body, contentType } = multipart(Buffer.from(info.photo as string, 'base64'));
      return [
        ['POST /v1/media/{id}/likes', { url: base, duration, connections, requests: [{ method: 'POST', setupRequest: (req) => { const n = likes++; return { ...req, path: `/v1/media/${mediaIds[n % mediaIds.length]}/likes?access_token=${likers[Math.floor(n / mediaIds.length) % likers.length]}` }; } }] }],
        // Every follow is a new (source, target) pair among the 2,000 likers.
        ['POST /v1/users/{id}/relationship', { url: base, duration, connections, requests: [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"action":"follow"}', setupRequest: (req) => { const n = follows++; const source = n % likers.length; const target = (source + 1 + Math.floor(n / likers.length)) % likers.length; return { ...req, path: `/v1/users/${likerIds[target]}/relationship?access_token=${likers[source]}` }; } }] }],
        ['POST /v1/media/{id}/comments', { url: base, duration, connections, requests: [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"a bench comment"}', setupRequest: (req) => { const n = comments++; return { ...req, path: `/v1/media/${mediaIds[n % mediaIds.length]}/comments?access_token=${likers[n % likers.length]}` }; } }] }],
        ['POST /v1/media (fan-out to 201)', { url: `${base}/v1/media?access_token=${info.poster as string}`, method: 'POST', headers: { 'content-type': contentType }, body, duration, connections: Math.min(connections, 8) }],
      ] as Array<[string, autocannon.Options]>;
    };
    const a = workloads(memory.info);
    const b = workloads(durable.info);
    const rows: DataDirRow[] = [];
    for (let i = 0; i < a.length; i++) {
      const [name, memoryOpts] = a[i]!;
      const durableOpts = b[i]![1];
      // In memory, data dir, data dir, in memory: a steady trend in the machine's load (other
      // processes on a shared machine) falls equally on both sides of the ratio.
      const m1 = await measure(`${name}, in memory`, memoryOpts);
      const d1 = await measure(`${name}, --data-dir`, durableOpts);
      const d2 = await measure(`${name}, --data-dir (again)`, durableOpts);
      const m2 = await measure(`${name}, in memory (again)`, memoryOpts);
      rows.push({ name, memory: mergeRows(m1, m2), durable: mergeRows(d1, d2) });
    }
    return rows;
  } finally {
    await Promise.all([stop(memory.child), stop(durable.child)]);
    rmSync(dir, { recursive: true, force: true });
  }
}

interface SharpRate {
  perS: number;
  libvipsThreads: number;
}

/** The image library alone making the upload route's three sizes of `photoFile`, `concurrency` at once, in a target process of its own. */
async function sharpRate(photoFile: string, durationS: number, concurrency: number): Promise<SharpRate> {
  process.stderr.write(`  measuring sharp alone (${concurrency} at once) …\n`);
  const t = await startTarget('sharp', photoFile, String(durationS), String(concurrency));
  await stop(t.child);
  return { perS: t.info.perS as number, libvipsThreads: t.info.libvipsThreads as number };
}

/** Argon2id hashes per second with `concurrency` in flight for `durationS` seconds, and the mean time of one. */
async function kdfAlone(durationS: number, concurrency: number): Promise<{ perS: number; meanMs: number; concurrency: number }> {
  const end = performance.now() + durationS * 1000;
  let n = 0;
  let totalMs = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await hashPassword('bench-password');
        totalMs += performance.now() - t0;
        n++;
      }
    }),
  );
  return { perS: n / durationS, meanMs: totalMs / Math.max(1, n), concurrency };
}

/** bench/vu-memory.ts in a child of its own (it needs --expose-gc, and a heap nothing else has grown). */
async function vuMemory(vus: number): Promise<VuMemory> {
  const file = fileURLToPath(new URL('../bench/vu-memory.ts', import.meta.url));
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', file, '--vus', String(vus)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`bench/vu-memory.ts exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as VuMemory;
}

export async function benchCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    duration: { type: 'string' },
    connections: { type: 'string' },
    followers: { type: 'string' },
    'skip-http': { type: 'boolean' },
    'skip-durability': { type: 'boolean' },
    'skip-tier': { type: 'boolean' },
    'stack-dir': { type: 'string' },
    soak: { type: 'string' },
    customers: { type: 'string' },
    'simulate-scale': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const duration = intOption(values.duration, 'duration', 8, 1, 3600);
  const connections = intOption(values.connections, 'connections', 32, 1, 10000);
  const followers = intOption(values.followers, 'followers', 1_000_000, 0, 50_000_000);
  const soakMin = intOption(values.soak, 'soak', 0, 0, 24 * 60);
  const customers = intOption(values.customers, 'customers', 200_000, 0, 100_000_000);
  const simScale = values['simulate-scale'] === undefined ? 1 : Number(values['simulate-scale']);
  if (!(simScale >= 0 && simScale <= 1)) throw new UsageError(`--simulate-scale must be a number from 0 to 1 (got "${values['simulate-scale']}")`);
  const stackDir = values['stack-dir'];
  if (stackDir !== undefined && values['skip-tier']) throw new UsageError('--stack-dir goes with the app tier section, which --skip-tier skips');
  if (stackDir !== undefined && !readStack(stackDir)) throw new UsageError(`--stack-dir ${stackDir}: no stack there (scalegram stack up --dir ${stackDir} starts one)`);
  let ok = true;

  if (!values['skip-http']) {
    process.stderr.write('HTTP (autocannon, target in its own process):\n');
    const rows: HttpRow[] = [];
    const accountRows: HttpRow[] = [];
    const sharpAlone: SharpRate[] = [];
    const uploadConnections = Math.min(connections, 8);
    let pageBytes: number;
    const bareBefore: HttpRow[] = [];
    const bareAfter: HttpRow[] = [];
    const sg = await startTarget('scalegram');
    const payloadFile = join(mkdtempSync(join(tmpdir(), 'scalegram-bench-')), 'feed.json');
    try {
      const feedUrl = `${sg.info.address as string}/v1/users/self/feed?access_token=${sg.info.reader as string}`;
      const page = Buffer.from(await (await fetch(feedUrl)).arrayBuffer());
      writeFileSync(payloadFile, page);
      pageBytes = page.length;
      // The bare routes are measured before and after the service's (their means are the
      // baselines), so a trend in the machine's load falls on both sides of the ratios.
      const bare = await startTarget('bare', payloadFile);
      const bareRows = async (again: string) => [
        await measure(`bare Fastify route (ceiling)${again}`, { url: `${bare.info.address}/`, duration, connections }),
        await measure(`bare route, a feed page as a Buffer${again}`, { url: `${bare.info.address}/payload`, duration, connections }),
      ];
      try {
        bareBefore.push(...(await bareRows('')));
        await measureService();
        bareAfter.push(...(await bareRows(' (again)')));
      } finally {
        await stop(bare.child);
      }
      rows.unshift(mergeRows(bareBefore[0]!, bareAfter[0]!), mergeRows(bareBefore[1]!, bareAfter[1]!));
      await measureAccounts();
    } finally {
      await stop(sg.child);
      rmSync(dirname(payloadFile), { recursive: true, force: true });
    }

    async function measureService(): Promise<void> {
      const base = sg.info.address as string;
      const reader = sg.info.reader as string;
      const mediaIds = sg.info.mediaIds as string[];
      const likers = sg.info.likers as string[];
      const feedUrl = `${base}/v1/users/self/feed?access_token=${reader}`;
      rows.push(await measure('GET /v1/users/self/feed (warm)', { url: feedUrl, duration, connections }));
      let i = 0;
      rows.push(await measure('GET /v1/media/{id}', { url: base, duration, connections, requests: [{ setupRequest: (req) => ({ ...req, path: `/v1/media/${mediaIds[i++ % mediaIds.length]}?access_token=${reader}` }) }] }));
      let j = 0;
      // Every like is a new (user, media) pair, so each request writes.
      rows.push(await measure('POST /v1/media/{id}/likes', {
        url: base, duration, connections,
        requests: [{ method: 'POST', setupRequest: (req) => { const n = j++; return { ...req, path: `/v1/media/${mediaIds[n % mediaIds.length]}/likes?access_token=${likers[Math.floor(n / mediaIds.length) % likers.length]}` }; } }],
      }));
      const photo = Buffer.from(sg.info.photo as string, 'base64');
      const { body, contentType } = multipart(photo);
      // The image library alone, before and after the uploads (a trend in the machine's load falls
      // on both sides), at the uploads' concurrency: the upload route's baseline.
      const photoFile = join(dirname(payloadFile), 'photo.jpg');
      writeFileSync(photoFile, photo);
      sharpAlone.push(await sharpRate(photoFile, duration, uploadConnections));
      rows.push(await measure('POST /v1/media (640×640 JPEG)', { url: `${base}/v1/media?access_token=${reader}`, method: 'POST', headers: { 'content-type': contentType }, body, duration, connections: uploadConnections }));
      sharpAlone.push(await sharpRate(photoFile, duration, uploadConnections));
    }

    async function measureAccounts(): Promise<void> {
      const base = sg.info.address as string;
      // Accounts: a signup hashes its password, a login verifies one (Argon2id on the thread pool).
      let k = 0;
      const form = { 'content-type': 'application/x-www-form-urlencoded' };
      accountRows.push(await measure('POST /v1/accounts (signup)', {
        url: base, duration, connections: Math.min(connections, 8),
        requests: [{ method: 'POST', headers: form, setupRequest: (req) => ({ ...req, path: '/v1/accounts', body: `username=bench_${process.pid}_${k++}&password=bench-password&full_name=Bench` }) }],
      }));
      let l = 0;
      accountRows.push(await measure('POST /oauth/access_token (login)', {
        url: base, duration, connections: Math.min(connections, 8),
        requests: [{ method: 'POST', headers: form, setupRequest: (req) => ({ ...req, path: '/oauth/access_token', body: `grant_type=password&username=liker${l++ % 2000}&password=scalegram` }) }],
      }));
    }
    const ceiling = rows[0]!.reqPerS;
    const pad = (s: string, n: number) => s.padEnd(n);
    const num = (v: number, n: number, d = 0) => v.toFixed(d).padStart(n);
    process.stdout.write(`\n${pad('route', 34)}${'req/s'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'ratio'.padStart(8)}${'errors'.padStart(8)}\n`);
    for (const r of rows) {
      process.stdout.write(`${pad(r.name, 34)}${num(r.reqPerS, 10)}${num(r.p50Ms, 9, 1)}${num(r.p99Ms, 9, 1)}${num((100 * r.reqPerS) / ceiling, 7, 1)}%${num(r.errors + r.non2xx, 8)}\n`);
    }
    const samePayload = rows[1]!;
    const feed = rows[2]!;
    const like = rows[4]!;
    const upload = rows[5]!;
    process.stdout.write(`(the bare routes: ${bareBefore.map((r, n) => `${r.reqPerS.toFixed(0)} and ${bareAfter[n]!.reqPerS.toFixed(0)}`).join(', ')} req/s before and after the service's routes; their means above)\n`);
    const sharpPerS = sharpAlone.reduce((a, r) => a + r.perS, 0) / sharpAlone.length;
    process.stdout.write(`${pad(`sharp alone, the 3 sizes (${uploadConnections} at once)`, 34)}${num(sharpPerS, 10)}   (${sharpAlone.map((r) => r.perS.toFixed(1)).join(' and ')} images/s before and after the uploads; libvips threads ${sharpAlone[0]!.libvipsThreads})\n`);
    const target = (name: string, share: number, of: string, value: number, base: number, clean: boolean) => {
      const pass = value >= share * base && clean;
      ok &&= pass;
      process.stdout.write(`target: ${name} ≥ ${100 * share}% of ${of} … ${((100 * value) / base).toFixed(1)}% ${pass ? 'PASS' : 'FAIL'}${clean ? '' : ' (errors)'}\n`);
    };
    target('warm feed', 0.4, `the bare route answering the same ${pageBytes.toLocaleString('en')}-byte body from a precomputed buffer`, feed.reqPerS, samePayload.reqPerS, feed.errors + feed.non2xx === 0);
    target('POST like', 0.1, 'the bare hello-world route (the ceiling)', like.reqPerS, ceiling, like.errors + like.non2xx === 0);
    target('POST media', 0.8, `sharp alone making the same JPEG's 3 sizes, ${uploadConnections} at once (images/s)`, upload.reqPerS, sharpPerS, upload.errors + upload.non2xx === 0);
    for (const r of rows) if (r.errors + r.non2xx > 0) process.stdout.write(`warning: ${r.name} had ${r.errors} errors and ${r.non2xx} non-2xx answers\n`);

    // The baseline of the account routes: the KDF alone, on this process's thread pool, as busy.
    process.stderr.write('  measuring Argon2id alone …\n');
    const kdf = await kdfAlone(duration, Math.min(connections, 8));
    process.stdout.write(`\naccounts (Argon2id m=${ARGON2ID.memoryCostKiB} KiB, t=${ARGON2ID.timeCost}, p=${ARGON2ID.parallelism}): the KDF alone ${kdf.perS.toFixed(0)} hashes/s, ${kdf.meanMs.toFixed(1)} ms per hash on ${kdf.concurrency} at once\n`);
    for (const r of accountRows) {
      process.stdout.write(`${pad(r.name, 34)}${num(r.reqPerS, 10)}${num(r.p50Ms, 9, 1)}${num(r.p99Ms, 9, 1)}${num((100 * r.reqPerS) / kdf.perS, 7, 1)}% of the KDF alone${r.errors + r.non2xx > 0 ? `  (${r.errors + r.non2xx} errors)` : ''}\n`);
    }
  }

  if (!values['skip-http']) {
    process.stderr.write('\nThe runner\'s HTTP path against autocannon (bare route in its own process):\n');
    const c = await compareRunnerWithAutocannon({ connections, durationS: duration, rounds: 2, progress: (m) => process.stderr.write(`  ${m}\n`) });
    for (let i = 0; i < c.autocannon.length; i++) {
      const cpu = (r: { cpuUsPerReq?: number }) => (r.cpuUsPerReq ?? 0).toFixed(1);
      process.stdout.write(
        `round ${i + 1}: autocannon ${c.autocannon[i]!.reqPerS.toFixed(0)} req/s, runner with the sync script ${c.runner.sync[i]!.reqPerS.toFixed(0)} req/s, with the awaited one ${c.runner.awaited[i]!.reqPerS.toFixed(0)} req/s ` +
          `(client CPU ${cpu(c.autocannon[i]!)} / ${cpu(c.runner.sync[i]!)} / ${cpu(c.runner.awaited[i]!)} µs/request)\n`,
      );
    }
    for (const s of ['sync', 'awaited'] as const) {
      const runnerOk = c.ratio[s] >= 0.8;
      ok &&= runnerOk;
      process.stdout.write(`target: runner (${s === 'sync' ? 'synchronous' : 'awaited'} script) ≥ 80% of autocannon … ${(100 * c.ratio[s]).toFixed(1)}% (median of rounds) ${runnerOk ? 'PASS' : 'FAIL'}\n`);
    }
    process.stderr.write('\nMemory per VU: 1,000 VUs of the synchronous script, each with its own module and an iteration in flight (bench/vu-memory.ts):\n');
    const mem = await vuMemory(1000);
    const memOk = mem.rssPerVuMB <= 5;
    ok &&= memOk;
    process.stdout.write(`target: memory per VU at ${mem.vus} VUs ≤ 5 MB (k6: about 1–5 MB) … RSS ${mem.rssPerVuMB.toFixed(3)} MB, heap ${mem.heapPerVuMB.toFixed(3)} MB per VU, ${mem.inFlight} iterations in flight ${memOk ? 'PASS' : 'FAIL'}\n`);
  }

  if (!values['skip-durability']) {
    process.stderr.write('\nWrites in memory and with --data-dir (two targets started alike; each route in memory, data dir, data dir, in memory):\n');
    const rows = await benchDataDir(duration, connections);
    const pad = (s: string, n: number) => s.padEnd(n);
    process.stdout.write(`\n${pad('write route', 38)}${'in memory'.padStart(11)}${'--data-dir'.padStart(12)}${'ratio'.padStart(8)}${'p99 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}\n`);
    for (const r of rows) {
      const errors = r.memory.errors + r.memory.non2xx + r.durable.errors + r.durable.non2xx;
      process.stdout.write(`${pad(r.name, 38)}${r.memory.reqPerS.toFixed(0).padStart(11)}${r.durable.reqPerS.toFixed(0).padStart(12)}${(r.durable.reqPerS / r.memory.reqPerS).toFixed(2).padStart(8)}${r.memory.p99Ms.toFixed(1).padStart(9)}${r.durable.p99Ms.toFixed(1).padStart(9)}${String(errors).padStart(8)}\n`);
    }
    const fan = { memory: [] as number[], durable: [] as number[] };
    for (const durable of [false, true, true, false]) {
      const dir = durable ? mkdtempSync(join(tmpdir(), 'scalegram-bench-fanout-')) : null;
      try {
        process.stderr.write(`  fan-out to ${DATA_DIR_FANOUT_FOLLOWERS.toLocaleString('en')} followers, ${durable ? '--data-dir' : 'in memory'} …\n`);
        const r = await benchFanout(DATA_DIR_FANOUT_FOLLOWERS, () => undefined, dir ? { dataDir: join(dir, 'data') } : {});
        (durable ? fan.durable : fan.memory).push(r.deliveriesPerS);
        if (!r.allDelivered) process.stdout.write(`warning: fan-out ${durable ? 'with --data-dir' : 'in memory'} did not reach every follower\n`);
        ok &&= r.allDelivered;
      } finally {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    }
    const perS = (v: number[]) => `${v.map((x) => Math.round(x).toLocaleString('en')).join(' and ')} deliveries/s`;
    const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
    process.stdout.write(`fan-out of one post to ${DATA_DIR_FANOUT_FOLLOWERS.toLocaleString('en')} followers (in process): in memory ${perS(fan.memory)}, --data-dir ${perS(fan.durable)}, ratio of the means ${(mean(fan.durable) / mean(fan.memory)).toFixed(2)}\n`);
    const cost = measureAppendCost(tmpdir());
    process.stdout.write(`one ${cost.appends}-append run to the data dir's disk: ${cost.writeUs.toFixed(1)} µs per append with write() only, ${cost.fsyncUs.toFixed(0)} µs with an fdatasync after each (${(cost.fsyncUs / cost.writeUs).toFixed(0)}×)\n`);
  }

  if (followers > 0) {
    process.stderr.write(`\nFan-out to ${followers.toLocaleString('en')} followers (default topology, in process):\n`);
    const r = await benchFanout(followers, (m) => process.stderr.write(`  ${m}\n`));
    const fanOk = r.allDelivered && (followers < 1_000_000 || r.fanoutMs <= 5000);
    ok &&= fanOk;
    process.stdout.write(`\nfan-out: ${r.deliveries.toLocaleString('en')} deliveries in ${(r.fanoutMs / 1000).toFixed(2)} s = ${Math.round(r.deliveriesPerS).toLocaleString('en')} deliveries/s (seeding took ${(r.seedMs / 1000).toFixed(1)} s)\n`);
    process.stdout.write(`target: fan-out to 1,000,000 followers ≤ 5 s … ${followers < 1_000_000 ? 'n/a (fewer followers)' : fanOk ? 'PASS' : 'FAIL'}${r.allDelivered ? '' : ' (not every follower got the post!)'}\n`);
    const realOk = await realFanout(followers, r); // not `ok &&= await …`: that skips the run once ok is false
    ok &&= realOk;
  }
  if (!values['skip-tier']) {
    const tierOk = await appTier(stackDir, duration, connections); // not `ok &&= await …`: that skips the run once ok is false
    ok &&= tierOk;
  }
  if (customers > 0) {
    process.stderr.write(`\nThe engine on M/M/c (λ=${MMC.lambda}, μ=${MMC.mu}, c=${MMC.servers}, ${customers.toLocaleString('en')} customers), beside SimPy:\n`);
    const r = benchMmc(customers);
    const pad = (s: string, n: number) => s.padEnd(n);
    const dev = (w: number) => `${w.toFixed(4)} (${((100 * (w - r.analyticWait)) / r.analyticWait).toFixed(1)}%)`.padStart(18);
    process.stdout.write(`\n${pad(`M/M/c, λ=${MMC.lambda} μ=${MMC.mu} c=${MMC.servers}`, 34)}${'customers/s'.padStart(13)}${'ratio'.padStart(9)}${'mean wait vs Erlang C'.padStart(24)}\n`);
    process.stdout.write(`${pad('Erlang C / (cμ−λ)', 34)}${''.padStart(13)}${''.padStart(9)}${r.analyticWait.toFixed(4).padStart(24)}\n`);
    const engineRatio = r.simpy ? `${(r.engine.customersPerS / r.simpy.customersPerS).toFixed(1)}×` : 'n/a';
    process.stdout.write(`${pad('scalegram engine (warm)', 34)}${Math.round(r.engine.customersPerS).toLocaleString('en').padStart(13)}${engineRatio.padStart(9)}${dev(r.engine.meanWait).padStart(24)}\n`);
    if (r.simpy) {
      process.stdout.write(`${pad('SimPy 2.3', 34)}${Math.round(r.simpy.customersPerS).toLocaleString('en').padStart(13)}${'1.0×'.padStart(9)}${dev(r.simpy.meanWait).padStart(24)}\n`);
      const ratio = r.engine.customersPerS / r.simpy.customersPerS;
      const mmcOk = ratio >= 30;
      ok &&= mmcOk;
      process.stdout.write(`(medians of ${r.engine.runs} alternating rounds, the same customers each time; SimPy ran in ${r.python}; the engine's cold first run, JIT warm-up included: ${Math.round(r.engineColdFirstRun).toLocaleString('en')} customers/s)\n`);
      process.stdout.write(`target: engine ≥ 30× SimPy's customers/s … ${ratio.toFixed(1)}× ${mmcOk ? 'PASS' : 'FAIL'}\n`);
    } else {
      process.stdout.write(`SimPy: skipped — ${r.simpySkipped}\n`);
      process.stdout.write('target: engine ≥ 30× SimPy\'s customers/s … n/a (SimPy not installed)\n');
    }
  }
  if (simScale > 0) {
    process.stderr.write(`\nandroid-launch simulated in virtual time at scale ${simScale} (scalegram simulate, its own process):\n`);
    const r = await simulateAndroidLaunch(simScale);
    const full = simScale === 1;
    const timeOk = r.wallMs <= 60_000;
    const rssOk = r.peakRssBytes <= 2 * 2 ** 30;
    if (full) ok &&= timeOk && rssOk && r.exitCode === 0;
    process.stdout.write(`\nsimulate android-launch (scale ${simScale}: ${r.accounts.toLocaleString('en')} accounts, ${r.signups.toLocaleString('en')} signups): ${(r.events / 1e6).toFixed(1)}M events in ${(r.wallMs / 1000).toFixed(1)} s of wall time (${(r.modelMs / 1000).toFixed(1)} s from loading the scenario to the end of the model; the rest is start-up and writing the reports) = ${(r.eventsPerS / 1e6).toFixed(2)}M events/s, peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB (exit ${r.exitCode})\n`);
    process.stdout.write(`target: full-scale android-launch ≤ 60 s of wall time … ${full ? `${(r.wallMs / 1000).toFixed(1)} s ${timeOk ? 'PASS' : 'FAIL'}` : 'n/a (not full scale)'}\n`);
    process.stdout.write(`target: full-scale android-launch ≤ 2 GiB RSS … ${full ? `${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB ${rssOk ? 'PASS' : 'FAIL'}` : 'n/a (not full scale)'}\n`);
  }
  if (soakMin > 0) {
    process.stderr.write(`\nSoak: ${soakMin} min of read load (bench/soak.ts, 300 req/s) through the runner:\n`);
    const r = await soak(soakMin);
    const soakOk = r.endKiB <= r.oneMinuteKiB * 1.25;
    ok &&= soakOk;
    process.stdout.write(`\nsoak: RSS ${(r.startKiB / 1024).toFixed(0)} MiB at start, ${(r.oneMinuteKiB / 1024).toFixed(0)} MiB after one minute, ${(r.endKiB / 1024).toFixed(0)} MiB at the end, ${(r.maxKiB / 1024).toFixed(0)} MiB at most (exit ${r.exitCode})\n`);
    process.stdout.write(`target: flat memory (end within 25% of one minute in) … ${soakOk ? 'PASS' : 'FAIL'}\n`);
  }
  return ok ? EXIT.OK : EXIT.FAILED;
}

/** `scalegram simulate scenarios/android-launch.ts` in its own process: wall time, events and the child's peak RSS. */
async function simulateAndroidLaunch(scale: number): Promise<{ wallMs: number; modelMs: number; events: number; eventsPerS: number; peakRssBytes: number; accounts: number; signups: number; exitCode: number | null }> {
  const out = mkdtempSync(join(tmpdir(), 'scalegram-bench-sim-'));
  const bin = fileURLToPath(new URL('../bin/scalegram.mjs', import.meta.url));
  const scenario = fileURLToPath(new URL('../scenarios/android-launch.ts', import.meta.url));
  const t0 = performance.now();
  const child = spawn(process.execPath, [bin, 'simulate', scenario, '--seed', '1', '--scale', String(scale), '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const wallMs = performance.now() - t0;
  try {
    const doc = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { simulation: { events: number; population: { accounts: number; signups: number }; wall: { ms: number; eventsPerS: number; peakRssBytes: number } } };
    const sim = doc.simulation;
    return { wallMs, modelMs: sim.wall.ms, events: sim.events, eventsPerS: sim.events / (wallMs / 1000), peakRssBytes: sim.wall.peakRssBytes, accounts: sim.population.accounts, signups: sim.population.signups, exitCode };
  } catch {
    return { wallMs, modelMs: 0, events: 0, eventsPerS: 0, peakRssBytes: 0, accounts: 0, signups: 0, exitCode };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
