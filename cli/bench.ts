// `scalegram bench`: one run that measures a bare Fastify route (the ceiling) and the photo service's
// hot routes with autocannon, each target in its own process, then fan-out of one post to 1M
// followers in process. Every figure is printed next to its ratio to the ceiling of the same run.

import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchFanout } from '../bench/fanout.ts';
import { intOption, parse } from './args.ts';
import { EXIT } from './exit-codes.ts';

const HELP = `Usage: scalegram bench [options]

Measures, in one run on this machine:
  1. a bare Fastify route (the ceiling) and the same route answering a warm feed page's bytes, then
     GET feed (warm), GET media, POST like and POST media on the photo service, each with req/s,
     p50, p99 and its ratio to the ceiling (autocannon);
  2. fan-out of one post to --followers followers on the default topology, with deliveries/s.
Targets: warm feed ≥ 40% of the ceiling; fan-out to 1,000,000 followers ≤ 5 s. Exit 1 if one is missed.

Options:
  --duration S      seconds per HTTP measurement (default 8)
  --connections N   concurrent connections (default 32)
  --followers N     followers for the fan-out measurement (default 1000000; 0 skips it)
  --skip-http       only the fan-out measurement
  -h, --help        show this help
`;

interface HttpRow {
  name: string;
  reqPerS: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** Mean response body size (bytes). */
  bytes: number;
}

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

async function measure(name: string, opts: autocannon.Options): Promise<HttpRow> {
  process.stderr.write(`  measuring ${name} …\n`);
  const r = await autocannon(opts);
  return { name, reqPerS: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, bytes: r.requests.total ? Math.round(r.throughput.total / r.requests.total) : 0 };
}

function multipart(photo: Buffer): { body: Buffer; contentType: string } {
  const boundary = '----scalegram-bench';
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="caption"\r\n\r\nbench upload #bench\r\n--${boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
  return { body: Buffer.concat([Buffer.from(head), photo, Buffer.from(`\r\n--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}

export async function benchCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    duration: { type: 'string' },
    connections: { type: 'string' },
    followers: { type: 'string' },
    'skip-http': { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const duration = intOption(values.duration, 'duration', 8, 1, 3600);
  const connections = intOption(values.connections, 'connections', 32, 1, 10000);
  const followers = intOption(values.followers, 'followers', 1_000_000, 0, 50_000_000);
  let ok = true;

  if (!values['skip-http']) {
    process.stderr.write('HTTP (autocannon, target in its own process):\n');
    const rows: HttpRow[] = [];
    const sg = await startTarget('scalegram');
    const payloadFile = join(mkdtempSync(join(tmpdir(), 'scalegram-bench-')), 'feed.json');
    try {
      const base = sg.info.address as string;
      const reader = sg.info.reader as string;
      const mediaIds = sg.info.mediaIds as string[];
      const likers = sg.info.likers as string[];
      const feedUrl = `${base}/v1/users/self/feed?access_token=${reader}`;
      writeFileSync(payloadFile, await (await fetch(feedUrl)).text());
      const bare = await startTarget('bare', payloadFile);
      try {
        rows.push(await measure('bare Fastify route (ceiling)', { url: `${bare.info.address}/`, duration, connections }));
        rows.push(await measure('bare route, a feed page\'s bytes', { url: `${bare.info.address}/payload`, duration, connections }));
      } finally {
        await stop(bare.child);
      }
      rows.push(await measure('GET /v1/users/self/feed (warm)', { url: feedUrl, duration, connections }));
      let i = 0;
      rows.push(await measure('GET /v1/media/{id}', { url: base, duration, connections, requests: [{ setupRequest: (req) => ({ ...req, path: `/v1/media/${mediaIds[i++ % mediaIds.length]}?access_token=${reader}` }) }] }));
      let j = 0;
      // Every like is a new (user, media) pair, so each request writes.
      rows.push(await measure('POST /v1/media/{id}/likes', {
        url: base, duration, connections,
        requests: [{ method: 'POST', setupRequest: (req) => { const n = j++; return { ...req, path: `/v1/media/${mediaIds[n % mediaIds.length]}/likes?access_token=${likers[Math.floor(n / mediaIds.length) % likers.length]}` }; } }],
      }));
      const { body, contentType } = multipart(Buffer.from(sg.info.photo as string, 'base64'));
      rows.push(await measure('POST /v1/media (640×640 JPEG)', { url: `${base}/v1/media?access_token=${reader}`, method: 'POST', headers: { 'content-type': contentType }, body, duration, connections: Math.min(connections, 8) }));
    } finally {
      await stop(sg.child);
      rmSync(dirname(payloadFile), { recursive: true, force: true });
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
    const feedOk = feed.reqPerS >= 0.4 * ceiling && feed.errors + feed.non2xx === 0;
    ok &&= feedOk;
    process.stdout.write(`target: warm feed ≥ 40% of the ceiling … ${((100 * feed.reqPerS) / ceiling).toFixed(1)}% ${feedOk ? 'PASS' : 'FAIL'}\n`);
    process.stdout.write(`        (the same ${samePayload.bytes.toLocaleString('en')}-byte answer from a bare route reaches ${((100 * samePayload.reqPerS) / ceiling).toFixed(1)}% of the ceiling; the feed is at ${((100 * feed.reqPerS) / samePayload.reqPerS).toFixed(1)}% of that)\n`);
    for (const r of rows) if (r.errors + r.non2xx > 0) process.stdout.write(`warning: ${r.name} had ${r.errors} errors and ${r.non2xx} non-2xx answers\n`);
  }

  if (followers > 0) {
    process.stderr.write(`\nFan-out to ${followers.toLocaleString('en')} followers (default topology, in process):\n`);
    const r = await benchFanout(followers, (m) => process.stderr.write(`  ${m}\n`));
    const fanOk = r.allDelivered && (followers < 1_000_000 || r.fanoutMs <= 5000);
    ok &&= fanOk;
    process.stdout.write(`\nfan-out: ${r.deliveries.toLocaleString('en')} deliveries in ${(r.fanoutMs / 1000).toFixed(2)} s = ${Math.round(r.deliveriesPerS).toLocaleString('en')} deliveries/s (seeding took ${(r.seedMs / 1000).toFixed(1)} s)\n`);
    process.stdout.write(`target: fan-out to 1,000,000 followers ≤ 5 s … ${followers < 1_000_000 ? 'n/a (fewer followers)' : fanOk ? 'PASS' : 'FAIL'}${r.allDelivered ? '' : ' (not every follower got the post!)'}\n`);
  }
  return ok ? EXIT.OK : EXIT.FAILED;
}
