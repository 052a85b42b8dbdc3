// The dashboard page: frames from /events (server-sent events, once a second) redraw the topology
// diagram and extend uPlot charts on one time axis (seconds since the topology started);
// faults and admin actions are marked on every chart and listed. Buttons and keys POST /actions.
'use strict';

// Okabe–Ito: distinguishable with every common colour-vision deficiency.
const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];

/** Every point received, by chart and series: Map<seriesName, Map<tSeconds, value>>. */
const charts = {
  hit: { title: 'Cache hit ratio per node', series: new Map(), plot: null, range: [0, 1] },
  ops: { title: 'Queries/s per database server', series: new Map(), plot: null },
  skew: { title: 'Skew: busiest ÷ mean', series: new Map(), plot: null },
  lag: { title: 'Replica lag (ms), fan-out p99', series: new Map(), plot: null },
  fanout: { title: 'Fan-out: queue depth and deliveries/s', series: new Map(), plot: null },
  // Per route, where the load's k6 metrics are at hand (a simulation, a run): absent from a bare serve.
  routes: { title: 'Requests/s per route', series: new Map(), plot: null, optional: true },
  latency: { title: 'Latency per route (ms)', series: new Map(), plot: null, optional: true, percentiles: { p50: new Map(), p95: new Map(), p99: new Map() }, shown: 'p95' },
};
/** Faults and admin actions, by `${t}|${label}|${n}` (n: the same action's nth time at that time). */
const events = new Map();
const state = { frames: 0, lastFrame: null, generation: null, sim: null, routesBucketMs: null, nowS: 0, statusUntil: 0 };
// For tests and the curious: what the page holds.
window.__dashboard = { state, charts, events };

function clearCharts(list) {
  for (const c of list) {
    c.series.clear();
    for (const m of Object.values(c.percentiles || {})) m.clear();
  }
}

function put(chart, name, points) {
  if (!Array.isArray(points)) return;
  let s = chart.series.get(name);
  if (!s) chart.series.set(name, (s = new Map()));
  for (const [t, v] of points) s.set(t / 1000, v);
}

function ingest(frame, whole) {
  const t = frame.telemetry;
  const gen = frame.world && frame.world.generation;
  if (whole || gen !== state.generation) {
    // A new world (a reset): its clock starts again.
    if (state.generation !== null && gen !== state.generation) {
      clearCharts(Object.values(charts));
      state.nowS = 0;
    }
    if (gen !== state.generation) events.clear();
    state.generation = gen;
  }
  for (const n of t.caches.nodes) put(charts.hit, n.name, n.hitRatioOverTime);
  for (const c of t.hotspots.clusters) for (const s of c.servers) put(charts.ops, s.name, s.opsPerS);
  for (const r of t.replicas.nodes) put(charts.lag, r.name, r.lagOverTime);
  put(charts.lag, 'fan-out p99', (t.fanout.lagOverTime || []).map((w) => [w.t, w.p99Ms]));
  const many = t.hotspots.clusters.length > 1;
  for (const c of t.hotspots.clusters) {
    put(charts.skew, many ? `${c.cluster}: logical shards` : 'logical shards', c.skewOverTime);
    put(charts.skew, many ? `${c.cluster}: servers` : 'servers', c.serverSkewOverTime);
  }
  put(charts.fanout, 'queue depth', t.fanout.queueDepth);
  put(charts.fanout, 'deliveries/s', t.fanout.deliveriesPerS);
  // The load's metric buckets widened (a long run): the frame carries every point again, at the new width.
  if (frame.routesBucketMs !== undefined && frame.routesBucketMs !== state.routesBucketMs) {
    clearCharts([charts.routes, charts.latency]);
    state.routesBucketMs = frame.routesBucketMs;
  }
  for (const [name, r] of Object.entries(frame.routes || {})) {
    put(charts.routes, name, r.reqsPerS);
    const l = charts.latency;
    for (const p of Object.keys(l.percentiles)) put({ series: l.percentiles[p] }, name, r[p]);
  }
  charts.latency.series = charts.latency.percentiles[charts.latency.shown];
  const seen = new Map();
  for (const e of t.events) {
    const k = `${e.t}|${e.label}`;
    const n = (seen.get(k) || 0) + 1;
    seen.set(k, n);
    events.set(`${k}|${n}`, e);
  }
  // One time axis for every chart: from the start to now.
  state.nowS = Math.max(state.nowS, t.nowMs / 1000);
  state.frames++;
  state.lastFrame = frame;
}

/**
 * The chart's series on one x array. Where a series has no point at an x another has, it is joined
 * across (undefined) when its own points there are as close as usual, and broken (null: a gap, drawn
 * as one) when they are far apart: a node off the ring for minutes has no hit ratio then, and its
 * line must not slope across the time it served nothing.
 */
function aligned(chart) {
  const xs = new Set();
  for (const s of chart.series.values()) for (const x of s.keys()) xs.add(x);
  const x = [...xs].sort((a, b) => a - b);
  const names = [...chart.series.keys()];
  const column = (s) => {
    const own = [...s.keys()].sort((a, b) => a - b);
    const steps = own.slice(1).map((v, i) => v - own[i]).sort((a, b) => a - b);
    const usual = steps.length ? steps[Math.floor(steps.length / 2)] : Infinity;
    let k = 0;
    return x.map((v) => {
      while (k < own.length && own[k] < v) k++;
      if (s.has(v)) return s.get(v);
      if (k === 0 || k >= own.length) return undefined;
      return own[k] - own[k - 1] > 2.5 * usual ? null : undefined;
    });
  };
  return { names, data: [x, ...names.map((n) => column(chart.series.get(n)))] };
}

function eventMarks(u) {
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = '#d55e00';
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
  for (const e of events.values()) {
    const x = u.valToPos(e.t / 1000, 'x', true);
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
  }
  ctx.restore();
}

function draw() {
  const box = document.getElementById('plots');
  // Seven charts (with the per-route ones) in four columns, five in three: all of them on a 1280×720 screen.
  const shown = Object.values(charts).filter((c) => !c.optional || c.series.size > 0).length;
  const columns = shown > 6 ? 4 : shown > 4 ? 3 : 2;
  box.classList.toggle('three', columns === 3);
  box.classList.toggle('four', columns === 4);
  const width = Math.max(200, Math.floor((box.clientWidth - 6 * columns) / columns));
  for (const [id, chart] of Object.entries(charts)) {
    if (chart.optional && chart.series.size === 0) continue;
    const { names, data } = aligned(chart);
    const key = names.join(',');
    if (!chart.plot || chart.key !== key || chart.width !== width) {
      chart.plot?.destroy();
      let holder = document.getElementById(`plot-${id}`);
      if (!holder) {
        holder = document.createElement('div');
        holder.className = 'plot';
        holder.id = `plot-${id}`;
        holder.innerHTML = `<h3>${chart.title}</h3>`;
        if (chart.percentiles) {
          // Which percentile the latency chart shows: every one is kept.
          const select = document.createElement('select');
          select.id = 'latency-percentile';
          select.title = 'percentile';
          for (const p of Object.keys(chart.percentiles)) select.appendChild(Object.assign(document.createElement('option'), { value: p, textContent: p }));
          select.value = chart.shown;
          select.addEventListener('change', () => {
            chart.shown = select.value;
            chart.series = chart.percentiles[chart.shown];
            chart.key = null;
            draw();
          });
          holder.querySelector('h3').appendChild(select);
        }
        box.appendChild(holder);
      }
      chart.key = key;
      chart.width = width;
      chart.plot = new uPlot(
        {
          width,
          height: columns > 3 ? 95 : 105,
          legend: { show: true, live: false },
          // One time axis for every chart: from the start to now.
          scales: { x: { time: false, range: () => [0, Math.max(1, state.nowS)] }, ...(chart.range ? { y: { range: chart.range } } : {}) },
          // Seconds on x (said once, in the section's title); room for the values on y.
          axes: [{ size: 22 }, { size: 48, values: (_u, vals) => vals.map(compact) }],
          series: [{ label: 's' }, ...names.map((n, i) => ({ label: n, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: false }))],
          hooks: { draw: [eventMarks] },
        },
        data,
        holder,
      );
    } else {
      chart.plot.setData(data);
    }
  }
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)} ms`);
// A figure a recorded (simulated) topology may not have: a dash, not "undefined".
const num = (v) => (typeof v === 'number' ? String(v) : '–');
/** Axis values that fit the axis: 1.2k, 3.4M. */
const compact = (v) => {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
};

function diagram(frame) {
  const topo = frame.topology;
  const t = frame.telemetry;
  const w = frame.world || { name: topo.name, seed: topo.seed, generation: 1 };
  // A replay of a finished run: nothing to act on.
  document.body.classList.toggle('replay', Boolean(w.replay));
  document.getElementById('world').textContent = w.replay
    ? `${w.name} · seed ${w.seed} · replay of ${w.replay.scenario} at ${w.replay.speed}×: ${(w.replay.atMs / 1000).toFixed(0)} of ${(w.replay.endMs / 1000).toFixed(0)} s`
    : w.sim
      ? `${w.name} · seed ${w.seed} · simulating ${w.scenario || ''}`
      : `${w.name} · seed ${w.seed} · generation ${w.generation}`;
  clock(w.sim);
  lesson(frame.lesson);
  document.getElementById('app').innerHTML = `<div class="node" title="${esc(topo.description || '')}"><b>Fastify · API v1</b>the photo service</div>`;

  const opsNow = new Map();
  for (const c of t.hotspots.clusters) for (const s of c.servers) opsNow.set(s.name, s.ops);
  const maxOps = Math.max(1, ...opsNow.values());
  let db = '';
  for (const cluster of topo.databases) {
    for (const s of cluster.servers) {
      const load = (opsNow.get(s.name) || 0) / maxOps;
      const saturated = s.pool.waiting > 0 ? ' saturated' : '';
      db +=
        `<div class="node${s.down ? ' down' : ''}${saturated}" data-node="${esc(s.name)}"><b>${esc(s.name)}</b>` +
        `<span title="pgbouncer pool: in use / size">pool ${num(s.pool.inUse)}/${num(s.pool.size)}</span>${s.pool.waiting ? ` <span title="waiting for a connection">+${s.pool.waiting}</span>` : ''}<br>${s.logicalShards} shards` +
        `<div class="band" title="queries, as a share of the busiest server's"><i data-load="${load.toFixed(3)}"></i></div>` +
        s.replicas.map((r) => `<div title="${esc(r.name)}: replication lag">${esc(r.name.slice(s.name.length + 1))} ${ms(r.lagMs)}</div>`).join('') +
        `<button data-action="${s.down ? 'db.revive' : 'db.fail'}" data-node="${esc(s.name)}" title="${s.down ? 'revive the server' : 'fail its primary over to its replica'}">${s.down ? 'revive' : 'fail'}</button>` +
        (s.logicalShards > 1 && !s.down ? `<button data-action="shards.split" data-node="${esc(s.name)}" title="add a server and move the upper half of this one's logical shards to it">split</button>` : '') +
        `</div>`;
    }
  }
  document.getElementById('db').innerHTML = db;
  // Widths through the CSSOM: the page's policy refuses style attributes in markup.
  for (const i of document.querySelectorAll('#db .band i')) i.style.width = `${Math.round(Number(i.dataset.load) * 100)}%`;

  const ratios = new Map(t.caches.nodes.map((n) => [n.name, n.hitRatio]));
  document.getElementById('cache').innerHTML = topo.cache.nodes
    .map((n) => {
      // Since start, as the ring has served; a dead node serves nothing.
      const lookups = n.hits + n.misses;
      const ratio = !n.alive ? null : lookups > 0 ? n.hits / lookups : ratios.get(n.name);
      return (
        `<div class="node${n.alive ? '' : ' down'}" data-node="${esc(n.name)}"><b>${esc(n.name)}</b>hit ${ratio === null || ratio === undefined ? '–' : `${(ratio * 100).toFixed(1)}%`}<br>${compact(n.items)} items` +
        `<button data-action="${n.alive ? 'cache.kill' : 'cache.revive'}" data-node="${esc(n.name)}">${n.alive ? 'kill' : 'revive'}</button></div>`
      );
    })
    .join('');

  const q = topo.queue;
  document.getElementById('feed').innerHTML =
    `<div class="node"><b>Redis</b>${esc(topo.feed.backend)}, ${esc(topo.feed.fanout)} fan-out</div>` +
    `<div class="node${q.depth >= q.maxDepth ? ' saturated' : ''}" data-node="queue"><b>job queue</b>depth ${q.depth}, ${q.running}/${q.workers} workers</div>`;

  document.getElementById('events').innerHTML = [...events.values()]
    .sort((a, b) => a.t - b.t)
    .map((e) => `<li class="event" data-kind="${esc(e.kind)}">${(e.t / 1000).toFixed(1)} s: ${esc(e.label)}</li>`)
    .join('');
  const hot = [];
  // The hottest shards of the frame's period (a quiet second has none: the last ones stay).
  if (!t.hotspots.clusters.some((c) => (c.hottest || []).length)) return;
  for (const c of t.hotspots.clusters) for (const h of c.hottest || []) hot.push(`<li>${esc(c.cluster)} shard ${h.shard} (${esc(h.server)}): ${h.ops} ops${h.users && h.users.length ? ` — ${h.users.slice(0, 3).map((u) => esc(u.username || u.id)).join(', ')}` : ''}</li>`);
  document.getElementById('hot').innerHTML = hot.join('') || '<li>none yet</li>';
}

/** hh:mm:ss of virtual time. */
const hms = (msv) => {
  const t = Math.floor(msv / 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${p(Math.floor(t / 3600))}:${p(Math.floor((t % 3600) / 60))}:${p(t % 60)}`;
};
const times = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : +x.toFixed(1));

/** A simulation's virtual clock and its controls (hidden in live modes: the scenario's own clock runs). */
function clock(sim) {
  const box = document.getElementById('clock');
  box.hidden = !sim;
  if (!sim) return;
  state.sim = sim;
  document.getElementById('vclock').textContent = `${hms(sim.nowMs)} / ${hms(sim.horizonMs)}`;
  document.getElementById('vclock').dataset.nowMs = String(sim.nowMs);
  const play = document.getElementById('sim-play');
  play.textContent = sim.done ? 'ended' : sim.paused ? '▶ play' : '❚❚ pause';
  play.dataset.action = sim.paused ? 'sim.resume' : 'sim.pause';
  play.disabled = sim.done;
  for (const b of box.querySelectorAll('button[data-action="sim.step"]')) b.disabled = sim.done;
  const select = document.getElementById('sim-speed');
  if (![...select.options].some((o) => o.value === String(sim.speed))) {
    const o = document.createElement('option');
    o.value = String(sim.speed);
    o.textContent = `${sim.speed}×`;
    select.appendChild(o);
  }
  if (document.activeElement !== select) select.value = String(sim.speed);
  document.getElementById('maxspeed').textContent =
    (sim.maxSpeed === null ? 'simulator max: measuring…' : `simulator max ${sim.maxSpeedAtLeast ? '≥' : '≈'} ${times(sim.maxSpeed)}× real time`) + (sim.behind ? ' · behind the pace' : '');
}

let lessonShown = null;
/** The scenario's lesson panel: what to watch and why Instagram chose what it did. */
function lesson(l) {
  const box = document.getElementById('lesson');
  box.hidden = !l;
  if (!l || lessonShown === l.scenario) return;
  lessonShown = l.scenario;
  const list = (title, items) => (items && items.length ? `<h3>${title}</h3><ul>${items.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>` : '');
  box.innerHTML = `<summary>Lesson: ${esc(l.title)}</summary>${list('Watch', l.watch)}${list('Why', l.why)}${list('Try', l.try)}<p class="sources">${l.sources.map(esc).join(' · ')}</p>`;
}

/** A line in the status corner that frames leave alone for a few seconds (an action's answer). */
function say(text, ms = 5000) {
  document.getElementById('status').textContent = text;
  state.statusUntil = Date.now() + ms;
}

async function act(action, node, value) {
  say(`${action}${node ? ` ${node}` : ''} …`, 3_600_000);
  const res = await fetch('/actions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action, ...(node ? { node } : {}), ...(value !== undefined ? { value } : {}) }) });
  const body = await res.json();
  say(res.ok ? `${action}${node ? ` ${node}` : ''}: done` : `${action}: ${body.error || JSON.stringify(body.answer && body.answer.body)}`, res.ok ? 3000 : 8000);
  // The clock's answer carries its new state: the buttons follow at once, not at the next frame.
  const clockState = res.ok && body.answer && body.answer.body && body.answer.body.state;
  if (clockState && state.sim) clock({ ...state.sim, ...clockState });
}

document.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  if (!b) return;
  void act(b.dataset.action, b.dataset.node, b.dataset.value === undefined ? undefined : b.dataset.value === 'max' ? 'max' : Number(b.dataset.value));
});
/** The hottest logical shard (of the last frame) and the quietest live server that does not hold it. */
function hotMove() {
  const f = state.lastFrame;
  if (!f) return null;
  const c = f.telemetry.hotspots.clusters[0];
  const hot = c && (c.hottest || [])[0];
  if (!hot) return null;
  const down = new Set(f.topology.databases[0].servers.filter((s) => s.down).map((s) => s.name));
  const quiet = c.servers.filter((s) => s.name !== hot.server && !down.has(s.name)).sort((a, b) => a.ops - b.ops)[0];
  return quiet ? { shard: hot.shard, to: quiet.name } : null;
}
document.getElementById('move-hot').addEventListener('click', () => {
  const m = hotMove();
  if (m) void act('shards.move', m.to, m.shard);
  else say('no hot shard yet: wait for queries');
});
document.getElementById('sim-speed').addEventListener('change', (e) => {
  const v = e.target.value;
  // Keys go back to the page (a select keeps them for its own type-ahead).
  e.target.blur();
  void act('sim.speed', undefined, v === 'max' ? 'max' : Number(v));
});
document.addEventListener('keydown', (e) => {
  if (e.target.closest('input, textarea, select') || e.ctrlKey || e.metaKey || e.altKey) return;
  const nodes = state.lastFrame ? state.lastFrame.topology.cache.nodes : [];
  const click = (id) => document.getElementById(id)?.click();
  if (e.key === 'k') {
    const n = nodes.find((x) => x.alive);
    if (n) void act('cache.kill', n.name);
  } else if (e.key === 'r') {
    const n = nodes.find((x) => !x.alive);
    if (n) void act('cache.revive', n.name);
  } else if (e.key === 'l') click('lag-up');
  else if (e.key === 'L') click('lag-down');
  else if (e.key === 's') click('slow-up');
  else if (e.key === 'S') click('slow-down');
  else if (e.key === 'c') click('celebrity');
  else if (e.key === 'm') click('move-hot');
  else if (e.key === 'e') click('leases-on');
  else if (e.key === 'E') click('leases-off');
  else if (state.sim && e.key === ' ') {
    e.preventDefault();
    click('sim-play');
  } else if (state.sim && e.key === '1') click('step-s');
  else if (state.sim && e.key === '2') click('step-m');
  else if (state.sim && e.key === '3') click('step-h');
});

function render(frame, whole) {
  ingest(frame, whole);
  diagram(frame);
  draw();
  document.getElementById('status').dataset.frames = String(state.frames);
  const replay = frame.world && frame.world.replay;
  if (Date.now() >= state.statusUntil) document.getElementById('status').textContent = replay ? (replay.atMs >= replay.endMs ? 'replay: the end' : 'replay') : frame.world && frame.world.sim ? 'simulation' : `live · ${new Date(frame.atMs).toLocaleTimeString()}`;
}

const stream = new EventSource('/events');
stream.addEventListener('whole', (e) => render(JSON.parse(e.data), true));
stream.addEventListener('frame', (e) => render(JSON.parse(e.data), false));
stream.addEventListener('problem', (e) => (document.getElementById('status').textContent = `problem: ${JSON.parse(e.data).message}`));
stream.onerror = () => (document.getElementById('status').textContent = 'disconnected: retrying…');
