// report.md: a run as a pull-request comment. The verdict and the three findings first, then the
// thresholds, key figures, HTTP per route, each area of the topology (fan-out, hotspots, caches,
// replicas), the events, and the config and seed that reproduce it. A pure function of result.json.

import { formatSeconds, formatValue, num } from '../scenarios/runner/format.ts';
import { durationText, keyFigures, observedText, timesText, type KeyFigures } from '../scenarios/runner/key-figures.ts';
import { telemetryX, timeline } from '../scenarios/runner/time-axis.ts';
import { cacheNodeDeadText, cacheNodeState, findings, virtualTimeOfDay, iterationErrorsText, unsaturatedText } from './findings.ts';
import type { ResultDocument } from './load-result.ts';

/** Text for a Markdown table cell: pipes and newlines would break the row. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function table(head: string[], rows: string[][], align: Array<'l' | 'r'> = []): string[] {
  const sep = head.map((_, i) => (align[i] === 'r' ? '---:' : '---'));
  return [`| ${head.map(cell).join(' | ')} |`, `| ${sep.join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

const ms = (v: number | null | undefined) => (v === null || v === undefined ? '–' : formatValue(v, 'ms'));
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : formatValue(v, 'ratio'));

export function verdictText(k: KeyFigures): string {
  if (k.aborted) return `aborted: ${k.aborted}`;
  const base = k.thresholds.length === 0 ? 'no thresholds' : k.failed.length ? `${k.failed.length} of ${k.thresholds.length} thresholds failed` : `all ${k.thresholds.length} thresholds passed`;
  const threw = k.iterations.errors > 0 ? `${base}; ${num(k.iterations.errors)} iteration${k.iterations.errors === 1 ? '' : 's'} threw` : base;
  return k.validity.valid ? threw : `${threw}; ${invalidText(k)}`;
}

/** "NOT VALID for conclusions: …" — why the run cannot be read as the scenario describes (runValidity). */
export function invalidText(k: KeyFigures): string {
  return `NOT VALID for conclusions: ${k.validity.reasons.join('; ')}`;
}

export function reportMarkdown(r: ResultDocument): string {
  const k = keyFigures(r);
  const tl = timeline(r);
  const out: string[] = [];
  const icon = !k.passed ? '❌' : k.iterations.errors > 0 || !k.validity.valid ? '⚠️' : '✅';
  out.push(`## ${icon} ${r.scenario}: ${verdictText(k)}`, '');
  if (k.iterations.errors > 0) out.push(`> **${iterationErrorsText(k, 5, 300)}**: the scenario did not run as written.`, '');
  out.push(`Seed ${r.seed}${r.simulation ? '' : ` · speed ${num(r.speed)}`} · scale ${num(r.scale)} · ${durationText(k, r.speed)} · topology ${r.topology?.name ?? 'unknown'} · target ${r.target} · started ${r.startedAt}`, '');

  out.push('**Findings**', '');
  findings(r, k).forEach((f, i) => out.push(`${i + 1}. ${f}`));
  out.push('');

  out.push('### Thresholds', '');
  if (k.thresholds.length === 0) out.push('The scenario sets no thresholds.');
  else out.push(...table(['', 'metric', 'threshold', 'observed'], k.thresholds.map((t) => [t.ok ? '✓' : '✗', `\`${t.metric}\``, `\`${t.expression}\`${t.abortOnFail ? ' (abortOnFail)' : ''}`, observedText(t)]), ['l', 'l', 'l', 'r']));
  out.push('');

  out.push('### Key figures', '');
  if (k.http) {
    out.push(`- **HTTP**: ${num(k.http.requests)} requests (${num(k.http.perS)}/s), ${pct(k.http.failedRate)} failed; duration avg ${ms(k.http.avg)}, p95 ${ms(k.http.p95)}, p99 ${ms(k.http.p99)}, max ${ms(k.http.max)}${k.http.intendedP95 !== null ? `; from the intended send time p95 ${ms(k.http.intendedP95)}` : ''}`);
  }
  out.push(`- **Iterations**: ${num(k.iterations.completed)} completed, ${num(k.iterations.interrupted)} interrupted, ${num(k.iterations.dropped)} dropped (${pct(k.iterations.droppedShare)} of planned), ${num(k.iterations.errors)} threw`);
  if (k.fanout) out.push(`- **Fan-out**: ${num(k.fanout.posts)} posts, ${num(k.fanout.deliveries)} deliveries, delivery lag p50 ${ms(k.fanout.lagP50)}, p99 ${ms(k.fanout.lagP99)}, queue depth max ${num(k.fanout.queueDepthMax)}`);
  for (const c of k.clusters) out.push(`- **Hotspots** (${c.cluster}): logical shard skew ${c.skew === null ? '–' : num(c.skew)}, physical server skew ${c.serverSkew === null ? '–' : num(c.serverSkew)} (max/mean)`);
  if (k.caches) out.push(`- **Caches**: hit ratio ${pct(k.caches.hitRatio)} over the run${k.caches.lowest ? `, lowest ${pct(k.caches.lowest.ratio)} at ${formatSeconds(k.caches.lowest.x)}` : ''}; ${num(k.caches.fills)} misses reached a shard, ${num(k.caches.evictions)} evictions, ${num(k.caches.herdEvents)} herd events`);
  if (k.replicas) out.push(`- **Replicas**: lag max ${ms(k.replicas.maxLagMs)}, ${num(k.replicas.staleReads.total)} stale reads, ${num(k.replicas.writesLost)} writes lost on promotion`);
  out.push('');

  out.push('### HTTP per route', '');
  if (k.routes.length === 0) out.push('No HTTP requests carried a `name` tag in this run.');
  else out.push(...table(['route', 'count', 'failed', 'p50', 'p95', 'p99', 'max'], k.routes.map((x) => [x.name, num(x.count), num(x.failed), ms(x.p50), ms(x.p95), ms(x.p99), ms(x.max)]), ['l', 'r', 'r', 'r', 'r', 'r', 'r']));
  out.push('');

  out.push('### Fan-out', '');
  if (!k.fanout) out.push('No fan-out in this run (no post was pushed to followers).');
  else {
    const f = k.fanout;
    out.push(
      ...table(
        ['posts', 'deliveries', 'failures', 'followers per post p50 / max', 'delivery lag p50', 'p99', 'max', 'worst 10-s window p99', 'queue depth max'],
        [[num(f.posts), num(f.deliveries), num(f.failures), `${f.sizeP50 === null ? '–' : num(f.sizeP50)} / ${f.sizeMax === null ? '–' : num(f.sizeMax)}`, ms(f.lagP50), ms(f.lagP99), ms(f.lagMax), f.worstWindow ? `${ms(f.worstWindow.p99Ms)} at ${formatSeconds(f.worstWindow.x)}` : '–', num(f.queueDepthMax)]],
        ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  }
  out.push('');

  out.push('### Hotspots', '');
  if (k.clusters.length === 0) out.push('No hotspot telemetry in this run.');
  for (const c of k.clusters) {
    out.push(`**${c.cluster}**: ${num(c.logicalShards)} logical shards on ${c.servers.length} servers, ${num(c.totalOps)} queries; a logical shard averaged ${num(c.meanShardOps)}.`, '');
    if (c.hottest.length) {
      out.push(
        ...table(
          ['shard', 'server', 'queries', '× mean', 'share', 'users behind it', 'operations'],
          c.hottest.map((h) => [
            String(h.shard),
            h.server,
            num(h.ops),
            timesText(c, h.ops),
            pct(h.share),
            h.users.slice(0, 2).map((u) => `@${u.username ?? u.id} (${pct(u.share)})`).join(', ') || '–',
            h.kinds.slice(0, 3).map((x) => x.kind).join(', ') || '–',
          ]),
          ['r', 'l', 'r', 'r', 'r', 'l', 'l'],
        ),
        '',
      );
    }
    const total = c.servers.reduce((a, s) => a + s.ops, 0);
    const mean = c.servers.length ? total / c.servers.length : 0;
    out.push(
      ...table(
        ['server', 'logical shards', 'queries', '× mean', 'replicas', 'state'],
        c.servers.map((s) => [s.name, num(s.logicalShards), num(s.ops), mean > 0 ? `${num(s.ops / mean)}×` : '–', String(s.replicas), s.down ? 'down' : 'up']),
        ['l', 'r', 'r', 'r', 'r', 'l'],
      ),
      '',
    );
  }

  out.push('### Caches', '');
  if (!k.caches) out.push('No cache lookups in this run.');
  else {
    out.push(
      ...table(
        ['node', 'state', 'hit ratio', 'hits', 'misses', 'dead', 'evictions', 'fills', 'herd events'],
        k.caches.nodes.map((n) => [n.name, cacheNodeState(n, r, tl), pct(n.hitRatio), num(n.hits), num(n.misses), cacheNodeDeadText(n), num(n.evictions), num(n.fills), num(n.herdEvents)]),
        ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  }
  out.push('');

  out.push('### Replicas', '');
  if (!k.replicas || k.replicas.nodes.length === 0) out.push('No database replicas in this run.');
  else {
    out.push(...table(['replica', 'of', 'configured lag at end', 'max lag', 'lag at end', 'stale reads'], k.replicas.nodes.map((n) => [n.name, n.server, ms(n.configuredLagMs), ms(n.maxLagMs), ms(n.lagMs), num(n.staleReads)]), ['l', 'l', 'r', 'r', 'r', 'r']));
    const feed = r.telemetry?.replicas.feed;
    if (feed) out.push('', `Feed replica: lag ${ms(feed.lagMs)}, ${num(feed.staleReads)} stale reads.`);
  }
  out.push('');

  out.push('### Events', '');
  const events = r.telemetry?.events ?? [];
  const starts = r.options.scenarios.filter((s) => s.startTimeMs > 0);
  if (events.length === 0 && starts.length === 0) out.push('No faults, shard moves or delayed scenarios in this run.');
  else {
    const rows = [
      ...starts.map((s) => ({ x: s.startTimeMs / 1000, what: `scenario \`${s.name}\` starts (${s.executor})` })),
      ...events.map((e) => ({ x: telemetryX(e.t, tl), what: e.label })),
    ].sort((a, b) => a.x - b.x);
    out.push(...table(['at', 'scenario time', 'event'], rows.map((e) => [formatSeconds(e.x), formatSeconds(e.x * r.speed), e.what]), ['r', 'r', 'l']));
  }
  out.push('');

  if (r.simulation) out.push(...simulationSection(r.simulation));

  out.push('### Config', '');
  out.push(...table(['scenario', 'executor', 'exec', 'starts', 'runs for'], r.options.scenarios.map((s) => [s.name, s.executor, s.exec, formatSeconds(s.startTimeMs / 1000), 'durationMs' in s ? formatSeconds(s.durationMs / 1000) : 'maxDurationMs' in s ? `≤ ${formatSeconds(s.maxDurationMs / 1000)}` : 'stages' in s ? formatSeconds(s.stages.reduce((a, st) => a + st.durationMs, 0) / 1000) : '–']), ['l', 'l', 'l', 'r', 'r']));
  out.push('');
  out.push(`Script \`${r.script}\`, seed ${r.seed}${r.simulation ? '' : `, speed ${num(r.speed)}`}, scale ${num(r.scale)}.`, '');
  if (r.topology) {
    out.push('<details><summary>Topology config</summary>', '', '```json', JSON.stringify(r.topology.config, null, 2), '```', '', '</details>', '');
  }
  return out.join('\n');
}

/** Rows of the resource table report.md shows (the busiest first); report.html shows them all. */
export const MD_RESOURCE_ROWS = 12;

/** What both reports say of a simulated run, as plain text: its sentences and its two tables (the first column left-aligned, the rest right). */
export function simulationTexts(sim: NonNullable<ResultDocument['simulation']>) {
  const p = sim.population;
  return {
    population: `Population: ${num(p.accounts)} base accounts and ${num(p.signups)} signups; ${num(p.followEdges)} follow edges, heavy-tailed and directed (most-followed ${num(p.followers.max)} followers, 99th percentile ${num(p.followers.p99)}, median ${num(p.followers.p50)}).`,
    warm: sim.warm.cold
      ? 'Caches started empty (--cold), as after a restart.'
      : `Caches started warm, as weeks of feed reads leave them: the latest photo of each of the ${num(sim.warm.accounts)} most-followed accounts (${num(sim.warm.keys)} keys, ${num(sim.warm.bytes / 2 ** 30)} GiB), the most followed most recently used.`,
    saturationLead: 'Resources in the order they saturated (≥ 95% busy in a step, or refusing work):',
    saturationHead: ['resource', 'first at (virtual time)', 'busy', 'refused then', 'req/s then'],
    saturation: sim.saturation.map((x) => [x.resource, virtualTimeOfDay(x.atMs), formatValue(x.use, 'ratio'), num(x.refused), num(x.reqPerS)]),
    /** With nothing saturated: the busiest resource and the load at which it would saturate. */
    unsaturated: unsaturatedText(sim) ?? 'No resource saturated.',
    resourceHead: ['resource', 'servers', 'peak busy', 'at', 'mean busy', 'refused', 'mean wait', 'max wait'],
    resources: sim.resources.map((x) => [x.resource, num(x.servers), formatValue(x.peakUse, 'ratio'), virtualTimeOfDay(x.peakAtMs), formatValue(x.meanUse, 'ratio'), num(x.refused), formatValue(x.meanWaitMs, 'ms'), formatValue(x.maxWaitMs, 'ms')]),
    delivery: sim.delivery ? `Fan-out delivery lag per follower (exact to the chunking): p50 ${formatValue(sim.delivery.p50Ms, 'ms')}, p99 ${formatValue(sim.delivery.p99Ms, 'ms')}, max ${formatValue(sim.delivery.maxMs, 'ms')} over ${num(sim.delivery.deliveries)} deliveries.` : null,
  };
}

/** How to read a simulated result: the model, its starting state, and every resource's load. */
export function simulationSection(sim: NonNullable<ResultDocument['simulation']>): string[] {
  const t = simulationTexts(sim);
  const align = (head: string[]) => head.map((_, i): 'l' | 'r' => (i === 0 ? 'l' : 'r'));
  const out: string[] = ['### Simulation', ''];
  out.push(
    `Simulated in virtual time by \`${sim.model}\` (no HTTP, no wall clock): every request queued at the resources the live code would use, with the capacities below (the README's resource table gives their sources). ${num(sim.events)} events.`,
    '',
    t.population,
    '',
    t.warm,
    '',
  );
  if (t.saturation.length) {
    out.push(t.saturationLead, '');
    out.push(...table(t.saturationHead, t.saturation, align(t.saturationHead)));
    out.push('');
  } else out.push(t.unsaturated, '');
  out.push(...table(t.resourceHead, t.resources.slice(0, MD_RESOURCE_ROWS), align(t.resourceHead)));
  if (t.resources.length > MD_RESOURCE_ROWS) out.push('', `The ${num(MD_RESOURCE_ROWS)} busiest of ${num(t.resources.length)} resources; all of them are in result.json (simulation.resources).`);
  out.push('');
  if (t.delivery) out.push(t.delivery, '');
  return out;
}
