// The three findings that matter most in this run, as short sentences with numbers: failed
// thresholds first, then whatever the run shows most strongly (dropped load, a hot shard, the cache
// dip, fan-out lag, replica lag and stale reads, the slowest route). The figures they quote come from
// scenarios/runner/key-figures.ts, which the end-of-run summary prints too.

import { formatSeconds, formatValue, num } from '../scenarios/runner/format.ts';
import { DROPPED_SHARE_WARNING, INVALID_DROPPED_SHARE, extreme, keyFigures, observedText, timesMean, type KeyFigures, type RouteRow } from '../scenarios/runner/key-figures.ts';
import { telemetryX, telemetryXY, timeline, type Timeline } from '../scenarios/runner/time-axis.ts';
import { SATURATED_USE } from '../sim/model/snapshot.ts';
import type { HotShard } from '../sim/observability/telemetry.ts';
import type { ResultDocument } from './load-result.ts';
import { thresholdLines, thresholdsOn } from './plots/data.ts';

/** Herd events below this many are noise, not a finding (count). */
const HERD_MIN_EVENTS = 1000;

/** A hot shard is a finding only with this many queries on it and in its cluster: a few queries prove nothing. */
export const HOT_SHARD_MIN_OPS = 100;
export const HOT_CLUSTER_MIN_OPS = 1000;

/** An error message on one line, a JSON error body shown by its error_message ("… failed: 400 no cache node …"). */
function errorMessageText(message: string): string {
  const body = /\{.*"error_message"\s*:\s*("(?:[^"\\]|\\.)*").*\}/.exec(message);
  let text = message;
  if (body) {
    try {
      text = message.slice(0, body.index) + String(JSON.parse(body[1]!)) + message.slice(body.index + body[0].length);
    } catch {
      // Not JSON after all: the message as it is.
    }
  }
  return text.replace(/\s+/g, ' ').trim();
}

/** Iterations that threw, with the first distinct messages: "2 iterations threw (kill: … failed: 400 …)". */
export function iterationErrorsText(k: KeyFigures, maxMessages = 2, maxChars = 100): string {
  const n = k.iterations.errors;
  const one = (m: { message: string; scenario: string; count: number }) => {
    const msg = errorMessageText(m.message);
    return `${m.scenario}: ${msg.length > maxChars ? msg.slice(0, maxChars - 1) + '…' : msg}${m.count > 1 && k.iterations.errorMessages.length > 1 ? ` ×${num(m.count)}` : ''}`;
  };
  const shown = k.iterations.errorMessages.slice(0, maxMessages).map(one);
  const more = k.iterations.errorMessages.length > maxMessages ? '; …' : '';
  return `${num(n)} iteration${n === 1 ? '' : 's'} threw${shown.length ? ` (${shown.join('; ')}${more})` : ''}`;
}

/** " on db-0-r1", or, when the trend caught a higher lag than any replica's per-second peak, that replica's own peak. */
export function worstText(rp: NonNullable<KeyFigures['replicas']>): string {
  if (!rp.worst || rp.worst.maxLagMs <= 0) return '';
  return rp.worst.maxLagMs >= rp.maxLagMs ? ` on ${rp.worst.name}` : ` (replica_lag_ms; the largest per-second peak of one replica: ${rp.worst.name}, ${formatValue(rp.worst.maxLagMs, 'ms')})`;
}

type CacheNodeRow = NonNullable<KeyFigures['caches']>['nodes'][number];

/**
 * A cache node's state at the end of the run, with when it was down (from the run's kill and revive
 * events): "alive (down 10m–15m)", "dead, off the ring (since 10m)", "gutter".
 */
export function cacheNodeState(n: CacheNodeRow, r: ResultDocument, tl: Timeline = timeline(r)): string {
  const state = n.gutter ? (n.alive ? 'gutter' : 'gutter, dead') : `${n.alive ? 'alive' : 'dead'}${n.onRing ? '' : ', off the ring'}`;
  const spans: string[] = [];
  let since: number | null = null;
  for (const e of r.telemetry?.events ?? []) {
    if (e.detail.node !== n.name) continue;
    if (e.kind === 'cache_kill' && since === null) since = e.t;
    else if (e.kind === 'cache_revive' && since !== null) {
      spans.push(`down ${formatSeconds(telemetryX(since, tl))}–${formatSeconds(telemetryX(e.t, tl))}`);
      since = null;
    }
  }
  if (since !== null) spans.push(`${n.alive ? 'down ' : ''}since ${formatSeconds(telemetryX(since, tl))}`);
  return spans.length ? `${state} (${spans.join('; ')})` : state;
}

/**
 * The lookups that found a cache node down: those that fell through to the shards (dead) and,
 * with a gutter pool, those of its keys the gutter took instead.
 */
export function cacheNodeDeadText(n: CacheNodeRow): string {
  const toGutter = n.toGutter ?? 0;
  if (toGutter === 0) return num(n.dead);
  return n.dead === 0 ? `${num(toGutter)}, to the gutter` : `${num(n.dead + toGutter)} (${num(toGutter)} to the gutter)`;
}

interface Candidate {
  score: number;
  text: string;
}

function userPart(h: HotShard): string {
  const u = h.users[0];
  if (!u || u.share < 0.2) return '';
  return `; ${num(100 * u.share, 2)}% of its rows touched belong to @${u.username ?? u.id}`;
}

type TelemetryEvent = NonNullable<ResultDocument['telemetry']>['events'][number];

/**
 * A split (or move) of logical shards, from the run's own figures: the source server's queries per
 * second before it started and after it finished, what the target took, and the other servers of
 * the cluster for comparison — the moved shards take their load with them. Rates are means over
 * whole telemetry steps in which the cluster served queries (an idle tail does not count).
 */
function shardMoveFindings(r: ResultDocument, tl: Timeline): Candidate[] {
  const tel = r.telemetry;
  if (!tel) return [];
  const out: Candidate[] = [];
  const step = tel.stepMs ?? tel.bucketMs ?? 1000;
  for (const start of tel.events) {
    if (start.kind !== 'shard_split' && start.kind !== 'shard_move') continue;
    const { from, to } = start.detail;
    const cluster = tel.hotspots.clusters.find((c) => (start.detail.cluster === undefined || c.cluster === start.detail.cluster) && c.servers.some((x) => x.name === from) && c.servers.some((x) => x.name === to));
    if (!cluster) continue;
    const what = `${start.kind === 'shard_split' ? 'Split' : 'Move'} of ${num(Number(start.detail.shards))} logical shard${start.detail.shards === 1 ? '' : 's'} ${String(from)} → ${String(to)}`;
    const at = (e: TelemetryEvent) => formatSeconds(telemetryX(e.t, tl));
    const done = tel.events.find((e) => e.kind === `${start.kind}_done` && e.t >= start.t && e.detail.from === from && e.detail.to === to && (start.detail.job === undefined || e.detail.job === start.detail.job));
    // Per server, its rate in each whole step; the cluster's total tells the steps with load.
    const rates = new Map(cluster.servers.map((x) => [x.name, new Map(x.opsPerS.map(([t, v]) => [t, v]))]));
    const steps = [...new Set(cluster.servers.flatMap((x) => x.opsPerS.map(([t]) => t)))].filter((t) => t + step <= tel.nowMs && cluster.servers.some((x) => (rates.get(x.name)!.get(t) ?? 0) > 0));
    const mean = (name: string, ts: number[]) => ts.reduce((a, t) => a + (rates.get(name)!.get(t) ?? 0), 0) / ts.length;
    const before = steps.filter((t) => t + step <= start.t);
    const after = done ? steps.filter((t) => t >= done.t) : [];
    if (!done || done.detail.state === 'failed' || before.length === 0 || after.length === 0) {
      const how = !done ? 'had not finished by the end of the run' : done.detail.state === 'failed' ? `failed at ${at(done)}` : `finished at ${at(done)}, with no load ${before.length === 0 ? 'before it started' : 'after it'} to compare`;
      out.push({ score: 700, text: `${what} started at ${at(start)} and ${how}.` });
      continue;
    }
    const others = cluster.servers.filter((x) => x.name !== from && x.name !== to && !x.down).map((x) => x.name);
    const othersMean = (ts: number[]) => (others.length ? others.reduce((a, n) => a + mean(n, ts), 0) / others.length : null);
    const fromBefore = mean(String(from), before);
    const fromAfter = mean(String(from), after);
    const toAfter = mean(String(to), after);
    const meanBefore = cluster.servers.filter((x) => x.name !== to).reduce((a, x) => a + mean(x.name, before), 0) / Math.max(1, cluster.servers.filter((x) => x.name !== to).length);
    const busiest = cluster.servers.filter((x) => x.name !== to).every((x) => mean(x.name, before) <= fromBefore);
    const rate = (v: number) => `${num(v)}/s`;
    const change = fromBefore > 0 ? `${fromAfter <= fromBefore ? 'fell' : 'rose'} by ${formatValue(Math.abs(fromBefore - fromAfter) / fromBefore, 'ratio')}` : 'changed';
    const ob = othersMean(before);
    const oa = othersMean(after);
    const othersText = ob !== null && oa !== null ? `; the other ${num(others.length)} servers went from ${rate(ob)} to ${rate(oa)} each` : '';
    out.push({
      score: 780,
      text: `${what} (${at(start) === at(done) ? `at ${at(start)}` : `${at(start)}–${at(done)}`}): ${String(from)} served ${num(fromBefore)} queries/s before it (${num(meanBefore > 0 ? fromBefore / meanBefore : 0)}× the mean server${busiest ? ', the busiest' : ''}) and ${rate(fromAfter)} after, while ${String(to)} took ${rate(toAfter)} (together ${rate(fromAfter + toAfter)}): the moved shards took their load with them, so ${String(from)}'s load ${change}${othersText}.`,
    });
  }
  return out;
}

/** The three findings that matter most in this run, as sentences with numbers. */
export function findings(r: ResultDocument, k: KeyFigures = keyFigures(r)): string[] {
  const out: Candidate[] = [];
  const eventKinds = new Set((r.telemetry?.events ?? []).map((e) => e.kind));
  const events = r.telemetry?.events ?? [];
  const tl = timeline(r);

  if (k.failed.length === 1) {
    const t = k.failed[0]!;
    out.push({ score: 1000, text: `Threshold failed: ${t.metric} ${t.expression} (observed ${observedText(t)}).` });
  } else if (k.failed.length > 1) {
    const list = k.failed.slice(0, 4).map((t) => `${t.metric} ${t.expression} (observed ${observedText(t)})`);
    out.push({ score: 1000, text: `${k.failed.length} of ${k.thresholds.length} thresholds failed: ${list.join('; ')}${k.failed.length > 4 ? '; …' : ''}.` });
  }
  // An iteration that threw skipped the rest of what it was to do (a fault not injected, a write
  // not made): whatever the thresholds say, the run is not the one the scenario describes.
  if (k.iterations.errors > 0) out.push({ score: 995, text: `${iterationErrorsText(k)} — the scenario did not run as written.` });
  if (r.aborted) out.push({ score: 990, text: `The run was aborted: ${r.aborted}.` });

  // In process, the server and the load generator share one event loop: when it ran late, every
  // latency includes that queueing, whatever the simulated topology did.
  if (k.harness?.saturated) {
    out.push({
      score: 950,
      text: harnessText(k.harness),
    });
  }

  // Most of the load dropped, or a route failing for most of its requests: the run cannot support
  // conclusions, whatever its thresholds say (the dropped-share finding below is part of it then).
  if (!k.validity.valid) out.push({ score: 940, text: `Not valid for conclusions, whatever the thresholds say: ${k.validity.reasons.join('; ')}. Read its figures as a description of what went wrong, not of the scenario${k.simulated ? '' : ' (lower --speed or --scale, or raise maxVUs, until the load is served)'}.` });
  if (k.iterations.droppedShare > DROPPED_SHARE_WARNING && k.iterations.droppedShare < INVALID_DROPPED_SHARE) {
    out.push({
      score: 900,
      text: `${formatValue(k.iterations.droppedShare, 'ratio')} of planned iterations were dropped (${num(k.iterations.dropped)} of ${num(k.iterations.dropped + k.iterations.completed + k.iterations.interrupted)}): the load served was well below the load planned, so read the figures as the load actually served.`,
    });
  }

  for (const c of k.clusters) {
    const h = c.hottest[0];
    const times = h ? timesMean(c, h.ops) : null;
    if (!h || times === null || h.ops < HOT_SHARD_MIN_OPS || c.totalOps < HOT_CLUSTER_MIN_OPS) continue;
    const moved = eventKinds.has('shard_split') || eventKinds.has('shard_move');
    // A shard at 50× the mean or more is the story of the run (range sharding under a surge).
    const score = moved ? 700 + Math.min(times, 200) : times >= 50 ? 700 : 400 + times;
    out.push({ score, text: `Hottest logical shard: ${h.shard} on ${h.server}${k.clusters.length > 1 ? ` (${c.cluster})` : ''} with ${num(h.ops)} queries, ${num(times)}× the mean shard (${num(c.meanShardOps)})${userPart(h)}.${c.servers.length > 1 && c.serverSkew !== null ? ` Physical server skew ${num(c.serverSkew)} (max/mean).` : ''}` });
  }

  out.push(...shardMoveFindings(r, tl));

  if (k.caches && k.caches.lowest) {
    const c = k.caches;
    const peak = c.atPeak ? `${formatValue(c.atPeak.ratio, 'ratio')} at peak load (${num(c.atPeak.reqPerS)} req/s at ${formatSeconds(c.atPeak.x)})` : '';
    const overall = `${formatValue(c.hitRatio ?? 0, 'ratio')} over the run, ${num(c.fills)} misses reached a shard`;
    // With a cache node killed, the dip after it is the point: before, lowest after, and the end.
    const kill = events.find((e) => e.kind === 'cache_kill');
    const ratio = telemetryXY(r.telemetry!.caches.hitRatioOverTime, r, tl);
    if (kill) {
      const kx = telemetryX(kill.t, tl);
      const before = ratio.filter((p) => p[0] < kx).pop();
      const after = extreme(ratio.filter((p) => p[0] >= kx), 'min');
      const dip = after ? `lowest after it ${formatValue(after[1], 'ratio')} (at ${formatSeconds(after[0])})` : 'no lookups after it';
      // The node itself: it comes back empty, so its own ratio shows the refill.
      const node = c.nodes.find((n) => n.name === kill.detail.node);
      const own = node ? extreme(telemetryXY(node.hitRatioOverTime, r, tl).filter((p) => p[0] >= kx), 'min') : null;
      const ownText = node && own ? `, ${node.name}'s own lowest ${formatValue(own[1], 'ratio')} (at ${formatSeconds(own[0])})` : '';
      out.push({ score: 800, text: `${kill.label} at ${formatSeconds(kx)}: cache hit ratio ${before ? `${formatValue(before[1], 'ratio')} just before, ` : ''}${dip}${ownText}${peak ? `; ${peak}` : ''}; ${overall}.` });
    } else {
      const low = c.lowest!;
      out.push({ score: low.ratio < 0.5 ? 680 : 380, text: `Cache hit ratio was lowest at ${formatValue(low.ratio, 'ratio')} (${formatSeconds(low.x)})${peak ? ` and ${peak}` : ''}; ${overall}.` });
    }
  }

  // A down node's keys: the gutter pool's work, or the shard reads one would have saved (Facebook's lesson).
  if (k.caches?.gutter && k.caches.gutter.lookups > 0) {
    const g = k.caches.gutter;
    const pool = `The gutter pool (${num(g.nodes)} node${g.nodes === 1 ? '' : 's'}, values kept ${formatValue(g.ttlMs, 'ms')})`;
    const facebook = "(Facebook's gutter, about 1% of the memcached servers, serves slightly stale values instead: deletes do not reach it)";
    // Lookups sent to a gutter node that was down itself: it answered none of them, they all fell through.
    const gutterNodes = k.caches.nodes.filter((n) => n.gutter);
    const down = gutterNodes.reduce((a, n) => a + n.dead, 0);
    if (down === 0) {
      out.push({
        score: 760,
        text: `${pool} answered the ${num(g.lookups)} lookups of a down node's keys: ${num(g.hits)} hits (${formatValue(g.hits / g.lookups, 'ratio')}), each a shard read saved; ${num(g.fills)} misses read a shard and filled it. Without it all ${num(g.lookups)} would have reached the shards ${facebook}.`,
      });
    } else {
      const answered = g.lookups - down;
      const kills = events.filter((e) => e.kind === 'cache_kill' && gutterNodes.some((n) => n.name === e.detail.node)).map((e) => `${e.label} at ${formatSeconds(telemetryX(e.t, tl))}`);
      const took = answered > 0 ? `answered ${num(answered)} of the ${num(g.lookups)} lookups of a down node's keys: ${num(g.hits)} hits (${formatValue(g.hits / answered, 'ratio')}), each a shard read saved` : `answered none of the ${num(g.lookups)} lookups of a down node's keys`;
      out.push({
        score: 760,
        text: `${pool} ${took}. The other ${num(down)} found the gutter down too${kills.length ? ` (${kills.join('; ')})` : ''} and fell through to the shards, as all ${num(g.lookups)} would have without it; ${num(g.fills)} misses of a down node's keys read a shard in all.`,
      });
    }
  } else if (k.caches && !k.caches.gutter && k.caches.dead >= HERD_MIN_EVENTS && k.caches.dead >= 0.01 * k.caches.lookups) {
    const c = k.caches;
    out.push({
      score: 740,
      text: `${num(c.dead)} lookups (${formatValue(c.dead / c.lookups, 'ratio')} of all) found their node down and fell through to the shards, every one of them. A gutter pool (\`cache.gutter: 1\`: a spare node that takes a down node's keys and keeps their values for \`cache.gutterTtlMs\`, 10 s by default) would serve the repeats; Facebook kept about 1% of its memcached servers as gutter.`,
    });
  }

  // The thundering herd: misses on keys another client was already filling (Facebook's lesson).
  if (k.caches && k.caches.herdEvents >= HERD_MIN_EVENTS) {
    const c = k.caches;
    const peak = extreme(telemetryXY(c.herdFillsPerS, r, tl, { perSecond: true }), 'max');
    const peakText = peak && peak[1] > 0 ? `, peaking at ${num(peak[1])}/s (${formatSeconds(peak[0])})` : '';
    const share = c.fills > 0 ? ` (${formatValue(c.herdFills / c.fills, 'ratio')} of the ${num(c.fills)} misses that reached a shard)` : '';
    if (c.leases) out.push({ score: 750, text: `Leases held the herd back: ${num(c.herdEvents)} misses found a fill of their key already in flight, and only ${num(c.herdFills)} of them read the shard${peakText}; the rest waited for the lease holder's value (one token per key per 10 s, as at Facebook).` });
    else if (c.herdFills >= HERD_MIN_EVENTS && c.herdFills >= 0.01 * c.fills) out.push({ score: c.herdFills >= 0.1 * c.fills ? 750 : 450, text: `Thundering herd: ${num(c.herdFills)} shard reads${share} were for keys another client was already filling${peakText}. Leases (\`cache.leases: true\`: one token per key per 10 s) make those misses wait for the one fill; Facebook cut such a peak from 17K/s to 1.3K/s.` });
  }

  if (k.fanout) {
    const f = k.fanout;
    const slow = (f.lagP99 ?? 0) > 1000 ? 300 : 0;
    const w = f.worstWindow ? `, worst 10-s window p99 ${formatValue(f.worstWindow.p99Ms, 'ms')} at ${formatSeconds(f.worstWindow.x)}` : '';
    if (f.deliveries === 0 && (f.sizeMax ?? 0) === 0) out.push({ score: 200, text: `Fan-out had nothing to deliver: the ${num(f.posts)} posts' authors had no followers yet, so no feed entries were pushed; queue depth peaked at ${num(f.queueDepthMax)}.` });
    else out.push({ score: 360 + slow, text: `Fan-out delivered ${num(f.deliveries)} feed entries for ${num(f.posts)} posts (up to ${f.sizeMax === null ? '–' : num(f.sizeMax)} followers each): delivery lag p50 ${f.lagP50 === null ? '–' : formatValue(f.lagP50, 'ms')}, p99 ${f.lagP99 === null ? '–' : formatValue(f.lagP99, 'ms')}${w}; queue depth peaked at ${num(f.queueDepthMax)}.` });
  }

  if (k.replicas && (k.replicas.staleReads.total > 0 || k.replicas.writesLost > 0 || k.replicas.maxLagMs > 0)) {
    const rp = k.replicas;
    const failover = eventKinds.has('db_fail') || eventKinds.has('replica_lag');
    const score = (failover ? 750 : 300) + (rp.writesLost > 0 ? 200 : 0);
    const lost = rp.writesLost > 0 ? `; ${num(rp.writesLost)} writes lost on promotion` : '';
    const fail = events.find((e) => e.kind === 'db_fail');
    const failText = fail ? `${fail.label} at ${formatSeconds(telemetryX(fail.t, tl))}. ` : '';
    out.push({ score, text: `${failText}Replica lag peaked at ${formatValue(rp.maxLagMs, 'ms')}${worstText(rp)}; ${num(rp.staleReads.total)} stale reads were served (${num(rp.staleReads.db)} database, ${num(rp.staleReads.feed)} feed)${lost}.` });
  }

  // The slowest route is scored by how far its tail is above its median and above any latency
  // threshold on it: a route with p99 ≥ 1 s or ≥ 20× its p50 ranks near the top.
  const lines = thresholdLines(r);
  const routeScore = (x: RouteRow): number => {
    const spread = x.p99 / Math.max(x.p50, 0.001);
    let score = x.p99 >= 1000 || spread >= 20 ? 850 : 200 + 10 * spread;
    const limits = thresholdsOn(lines, 'http_req_duration', { name: x.name }).filter((t) => t.aggregation.startsWith('p(') || t.aggregation === 'max' || t.aggregation === 'avg' || t.aggregation === 'med');
    if (limits.some((t) => t.value > 0 && x.p99 > t.value)) score += 100;
    return score;
  };
  const routes = k.routes.filter((x) => !x.name.startsWith('sim_') && x.count >= 10).map((x) => ({ x, score: routeScore(x) }));
  const slowestRoute = routes.reduce<{ x: RouteRow; score: number } | null>((a, c) => (!a || c.score > a.score || (c.score === a.score && c.x.p99 > a.x.p99) ? c : a), null);
  const slowest = slowestRoute?.x;
  if (slowest) out.push({ score: slowestRoute.score, text: `Slowest route: ${slowest.name}, p99 ${formatValue(slowest.p99, 'ms')} over ${num(slowest.count)} requests (p50 ${formatValue(slowest.p50, 'ms')}${slowest.failed ? `, ${num(slowest.failed)} failed` : ''}).` });

  if (r.simulation) out.push(...simulatedFindings(r, r.simulation, k));

  if (out.length === 0 && k.http) out.push({ score: 0, text: `${num(k.http.requests)} requests, ${formatValue(k.http.failedRate, 'ratio')} failed, p95 ${formatValue(k.http.p95, 'ms')}.` });
  return out
    .sort((a, b) => b.score - a.score)
    .slice(0, 3)
    .map((c) => c.text);
}

/** The harness-saturation finding: which loop ran late (the shared one, the load generator's or the server thread's), and what it means. */
export function harnessText(h: NonNullable<KeyFigures['harness']>): string {
  const late = `ran up to ${num(h.p99Ms)} ms late (p99; max ${num(h.maxMs)} ms)`;
  const other = h.loops.find((l) => l.side !== h.side);
  const otherText = other ? ` (the ${other.side === 'server' ? "server thread's" : "load generator's"} loop: p99 ${num(other.p99Ms)} ms)` : '';
  if (h.side === 'shared') return `The harness was saturated: its event loop (shared in process by the server and the load generator) ${late}, so latencies include queueing in this machine, not only in the simulated topology — lower --speed or --scale, or run on a quieter machine.`;
  if (h.side === 'server') return `The server was saturated: the server thread's event loop (the whole app tier, one Node thread) ${late}${otherText}, so latencies include queueing in this machine's one server thread, not only in the simulated topology — lower --speed or --scale, or run on a faster machine.`;
  return `The load generator was saturated: its event loop ${late}${otherText}, so iterations started late and latencies include queueing in the runner, not in the server — lower --speed or --scale, or run on a quieter machine.`;
}

/** "14:05" of virtual time since the start (the simulation's day starts at 00:00). */
export function virtualTimeOfDay(ms: number): string {
  const m = Math.floor(ms / 60_000);
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

/** A load multiple for a sentence: 8.3×, 12×. */
function multiple(x: number): string {
  return `${x < 10 ? x.toFixed(1) : num(Math.round(x))}×`;
}

/** Twitter's 2013 fan-out figures (BRIEF.md): one post to 1M followers in a median 3.5 s, p99 up to 5 minutes. */
export const TWITTER_FANOUT = { p50Ms: 3500, p99Ms: 300_000 };

/**
 * When no resource saturated: the busiest, and the load at which it would. A resource's busy share
 * is arrivals × work per arrival ÷ servers, so at the same mix, with the same work per request, it
 * grows in proportion to the load. The busiest saturates at about SATURATED_USE ÷ its peak share
 * (its busiest interval grown in proportion). The bound is over every resource: by SATURATED_USE ÷
 * the largest mean share, that resource's average interval is that busy, so some interval is.
 * Null when there is no resource.
 */
export function unsaturatedText(sim: Pick<NonNullable<ResultDocument['simulation']>, 'resources'>): string | null {
  const top = sim.resources[0];
  if (!top) return null;
  const head = `No modelled resource saturated: the busiest was ${top.resource} at ${formatValue(top.peakUse, 'ratio')} busy (at ${virtualTimeOfDay(top.peakAtMs)}; ${formatValue(top.meanUse, 'ratio')} on average), mean queue wait ${formatValue(top.meanWaitMs, 'ms')}.`;
  const steady = sim.resources.reduce<(typeof sim.resources)[number] | null>((a, x) => (x.meanUse > (a?.meanUse ?? 0) ? x : a), null);
  if (top.peakUse <= 0 || !steady) return head;
  const sooner = SATURATED_USE / top.peakUse;
  const latest = SATURATED_USE / steady.meanUse;
  const bound =
    latest <= sooner
      ? ` ${steady.resource} saturates first, by ${multiple(latest)} this load at the latest (its average interval would then be ${formatValue(SATURATED_USE, 'ratio')} busy)`
      : ` ${top.resource} would saturate first, at about ${multiple(sooner)} this load if its busiest interval grows in proportion; by ${multiple(latest)} at the latest something saturates (${steady.resource === top.resource ? 'its' : `${steady.resource}'s`} average interval would then be ${formatValue(SATURATED_USE, 'ratio')} busy)`;
  return `${head} At this mix, with the same work per request,${bound}.`;
}

/** What only a simulation shows: what saturated first (and when, at what load), per-follower delivery lag. */
function simulatedFindings(r: ResultDocument, sim: NonNullable<ResultDocument['simulation']>, k: KeyFigures): Candidate[] {
  const out: Candidate[] = [];
  const sat = sim.saturation;
  if (sat.length > 0) {
    const f = sat[0]!;
    const why = f.refused > 0 ? `refusing ${num(f.refused)} requests in that step` : `${formatValue(f.use, 'ratio')} busy`;
    const then = sat.slice(1, 3).map((x) => `${x.resource} at ${virtualTimeOfDay(x.atMs)}`);
    out.push({ score: 870, text: `First to saturate: ${f.resource} at ${virtualTimeOfDay(f.atMs)} of virtual time (${why}, with the service answering ${num(f.reqPerS)} req/s)${then.length ? `; then ${then.join(', ')}` : ''}.` });
  } else {
    const text = unsaturatedText(sim);
    if (text) out.push({ score: 330, text });
  }
  const d = sim.delivery;
  const biggest = k.fanout?.sizeMax ?? 0;
  if (d && biggest >= 100_000) {
    const vs = d.p50Ms > TWITTER_FANOUT.p50Ms ? `${num(d.p50Ms / TWITTER_FANOUT.p50Ms)}× Twitter's 3.5 s median` : `within Twitter's 3.5 s median`;
    out.push({ score: 860, text: `Fan-out of ${num(biggest)} followers: per-follower delivery lag p50 ${formatValue(d.p50Ms, 'ms')}, p99 ${formatValue(d.p99Ms, 'ms')} (${vs}; Twitter 2013: 3.5 s median to 1M followers, p99 up to 5 min) over ${num(d.deliveries)} deliveries.` });
  }
  void r;
  return out;
}

/**
 * The three teaching findings of the Android launch, always in this order: the hot shard and whose
 * data it holds, the cache hit ratio at its lowest and at peak load, fan-out lag (what `npm start` prints).
 */
export function teachingFindings(r: ResultDocument, k: KeyFigures = keyFigures(r)): string[] {
  const out: string[] = [];
  const c = k.clusters[0];
  const h = c?.hottest[0];
  const times = c && h ? timesMean(c, h.ops) : null;
  const owner = h?.users[0];
  out.push(
    h && c
      ? `Hot shard: logical shard ${h.shard} on ${h.server} took ${num(h.ops)} queries, ${times === null ? '–' : num(times)}× the mean shard${owner ? `; ${num(100 * owner.share, 2)}% of its rows touched belong to @${owner.username ?? owner.id}${h.kinds[0] ? ` (mostly ${h.kinds.slice(0, 2).map((x) => x.kind).join(' and ')})` : ''}` : ''}.`
      : 'Hot shard: no shard took enough queries to tell.',
  );
  const ca = k.caches;
  out.push(
    ca && ca.lowest
      ? `Cache hit ratio: lowest ${formatValue(ca.lowest.ratio, 'ratio')} (at ${formatSeconds(ca.lowest.x)})${ca.atPeak ? `, ${formatValue(ca.atPeak.ratio, 'ratio')} at peak load (${num(ca.atPeak.reqPerS)} req/s at ${formatSeconds(ca.atPeak.x)})` : ''}; ${formatValue(ca.hitRatio ?? 0, 'ratio')} over the run.`
      : 'Cache hit ratio: no cache lookups.',
  );
  const f = k.fanout;
  const d = r.simulation?.delivery;
  out.push(
    f
      ? `Fan-out lag: ${num(f.posts)} posts reached ${num(f.deliveries)} feeds (up to ${f.sizeMax === null ? '–' : num(f.sizeMax)} followers each); post → last follower p50 ${f.lagP50 === null ? '–' : formatValue(f.lagP50, 'ms')}, p99 ${f.lagP99 === null ? '–' : formatValue(f.lagP99, 'ms')}${d ? `; per follower p50 ${formatValue(d.p50Ms, 'ms')}, p99 ${formatValue(d.p99Ms, 'ms')} (Twitter 2013: 3.5 s median to 1M followers)` : ''}.`
      : 'Fan-out lag: no posts were fanned out.',
  );
  return out;
}
