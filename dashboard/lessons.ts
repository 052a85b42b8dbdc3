// The lesson panel beside the dashboard: for each growth event (a scenario in scenarios/), what to
// watch on the page and why Instagram made the choice it did, with the sources' own numbers.
//
// Plain text only (the page escapes it); each bullet fits a side panel at 1280×720 (under ~200
// characters). Every number in a `why` bullet is copied from ../shared/BRIEF.md or its seeds, and
// test/dashboard-lessons.test.ts checks that it is found there. `watch` and `try` bullets describe this
// project's scenarios and page (their figures come from the scenario files and the topology presets).

export interface Lesson {
  /** The scenario's file name in scenarios/, without `.ts`. */
  scenario: string;
  title: string;
  /** What to look at on the page, by the names the page uses, and what to expect there (2–4). */
  watch: string[];
  /** Why Instagram chose what it did, each with a number from BRIEF.md or the seeds (2–4). */
  why: string[];
  /** An action to take on the page (a button or key) or a rerun, and what it shows (0–3). */
  try?: string[];
  /** Where the numbers come from: `BRIEF.md: <its section>` or `Seed: "<a phrase of the seed>" …`. */
  sources: string[];
}

const SEED_TALK = 'Seed: "如何成为十亿美元公司" (How to be a billion-dollar company), Mike Krieger\'s April 2012 talk, in CSDN\'s translation';
const SEED_SECRETS = 'Seed: "The engineering and technical secrets behind Instagram success" (from Instagram\'s engineering blog)';

const lessons: Lesson[] = [
  {
    scenario: 'launch-day',
    title: 'Launch day: 25,000 signups on one small machine',
    watch: [
      'The diagram has one of everything: db-0 in Postgres servers holds all 2048 logical shards with no replica, the memcached ring is cache-0 alone, and the job queue has 4 workers.',
      "Queries/s per database server has a single line, db-0's, following the day's signup curve: a ramp to the midday peak (28 signups a minute for 6 hours), then down.",
      "Watch db-0's pgbouncer pool (in use/16; amber once queries wait, +N) and the job queue's depth against its 4 workers: whichever backs up first is what saturates first.",
      'Replica lag (ms) stays empty: a single box has no replica to read from or to fail over to.',
    ],
    why: [
      'Two founders with no backend experience launched on one machine in Los Angeles, less powerful than a MacBook Pro, and 25,000 people signed up on the first day.',
      'The first lessons were operational: a forgotten favicon.ico filled Django with 404 errors, and limits like ulimit -n (open files) and memcached -t 4 (threads) had to be raised.',
      'Their principles were simplicity, minimal operational burden and instrument everything: with 2 engineers in 2010, they moved to EC2 rather than keep tuning one box.',
    ],
    try: [
      'Press fail on db-0: with no replica there is nothing to promote; Events reads "db-0 failed (down)" and requests fail until you press revive.',
      'Press s (queries +5 ms): each query holds its connection longer, so db-0\'s one pool of 16 connections fills and shows waiters (+N) sooner.',
    ],
    sources: ['BRIEF.md: Load figures', 'BRIEF.md: Vertical partitioning came first', SEED_TALK],
  },
  {
    scenario: 'android-launch',
    title: 'Android launch, April 2012: 1M new users in 12 hours',
    watch: [
      'Queries/s per database server: all 12 lines rise together, since signups are spread over the logical shards by modulo and no server takes the surge alone (compare hash-vs-range).',
      "Hottest shards: the top entries name celebrities, not new users: half of the likes go to a celebrity's latest photo, so popularity, not signups, makes the hot shard.",
      'Fan-out: queue depth and deliveries/s: deliveries/s jumps with each upload by a much-followed account; queue depth should drain back to 0 between them.',
      'Cache hit ratio per node: six lines close together (ketama spreads the keys); new users\' objects start cold, and the scenario\'s threshold asks for an average above 0.5.',
    ],
    why: [
      '1M new users signed up in the first 12 hours (~23/s on average) on a base of ~30M accounts, and the service reached 40M ten days later.',
      'Reads scaled by adding copies, not by redesign: when Redis hit a wall above 40k req/s, Instagram added a read replica (Redis SLAVEOF) and carried on.',
      "An upload is written once, to the owner's shard; then ~200 Gearman workers push its id onto every follower's Redis list, so posting returns quickly.",
      'The stack that carried it was small: 25+ Django app servers, 12 Postgres primaries with 12 streaming replicas, 6 memcached instances, run by 5 engineers in 2012.',
    ],
    try: [
      "Press k (kill the next live cache node): its keys miss and fall through, and Queries/s per database server rises on every server, since each one holds some of its keys' rows.",
      'Press s (queries +5 ms): each query holds its pgbouncer connection longer; watch the pools (in use/32) fill and waiters (+N) appear on the busiest servers first.',
    ],
    sources: ['BRIEF.md: Scale, April 2012', 'BRIEF.md: Load figures', 'BRIEF.md: The 2011–2012 stack', SEED_TALK],
  },
  {
    scenario: 'celebrity-post',
    title: 'A celebrity posts: one upload, a million feed writes',
    watch: [
      "Fan-out: queue depth and deliveries/s: at the post, one job per ~4,000 followers is queued; deliveries/s stays high until the last follower's feed has the photo and the depth is 0.",
      'Redis feeds · job queue: the job queue box shows the chunk jobs waiting (depth) and the workers busy (n/200) while the one feed Redis takes every push.',
      "Hottest shards: within seconds the top entry is the celebrity's shard, named with the celebrity: the follower list is read there, and every like and comment on the photo lands there.",
      'Queries/s per database server: the server holding that shard climbs above the other 11 while the crowd reacts (200 likes, comments and feed reads a second at --scale 1).',
    ],
    why: [
      "Instagram pushed: on upload, a queued job (run by ~200 Gearman workers) writes the media id onto every follower's Redis list, so a feed read is one list read plus a memcached multiget.",
      'Push costs the most for the biggest accounts: Twitter fanned out in chunks of ~4K and took a median 3.5 s to deliver one post to 1M followers, with p99 up to 5 min.',
      'Feed lists are capped at 800 entries, and very large accounts are better pulled at read time than pushed: the hybrid push/pull that bounds a celebrity post\'s cost.',
      'The graph is heavy-tailed and directed: by April 2012 the most-followed accounts had millions of followers, so one of their posts means ~1M list pushes.',
    ],
    try: [
      'The post goes out as the run starts: time how long queue depth and deliveries/s take to fall back to 0. That is the last follower\'s delivery lag (the scenario allows 5,000 ms).',
    ],
    sources: ['BRIEF.md: Feed fan-out', 'BRIEF.md: Anchors for the virtual-time simulator', 'BRIEF.md: Social graphs are heavy-tailed and directed', SEED_TALK],
  },
  {
    scenario: 'cache-node-loss',
    title: 'A memcached node dies at peak',
    watch: [
      'Cache hit ratio per node: at 10 min (dashed on every chart; Events: "cache-2 killed … off the ring") cache-2\'s line stops, and its neighbours dip as they take its keys, then recover.',
      "Queries/s per database server: every server's line jumps at the kill, as cache-2's keys miss and fall through to the shards that hold them, then settles as the ring refills.",
      "From 9 min a celebrity's photo goes viral while each like deletes it from the cache: the server holding it rises alone in Queries/s, and its shard tops Hottest shards (the herd).",
      'At 15 min Events shows "cache-2 revived (empty)": its line comes back low and climbs as reads refill it.',
    ],
    why: [
      'Instagram ran 6 memcached nodes, look-aside with delete on write; with ketama (~160 points per node) losing one moves only ~1/6 of the keys, where modulo-N would move nearly all.',
      'A miss storm lands on a cache that has little headroom: memcached at 50k req/s already had requests stuck >1.5 s before any node died.',
      "Facebook's fix for the herd: leases let one client refill a hot key while the others wait, cutting the database peak from 17K/s to 1.3K/s.",
      "Facebook also kept a gutter pool of ~1% of its servers to absorb a dead node's traffic, and saw that one hot key can be 20% of a server's load.",
    ],
    try: [
      'Press k to kill the next live node and r to revive it: the same dip on demand, and a revived node starts empty, its hit ratio rebuilding from the shards.',
      'Rerun with -e HASHING=modulo: a kill then remaps nearly every key, so every node\'s hit ratio drops, not one sixth of the keys\'.',
      'Rerun with -e LEASES=true or -e GUTTER=1: the viral photo\'s server stays lower in Queries/s, because readers wait on one fill or read the gutter instead of the shard.',
    ],
    sources: ['BRIEF.md: Caches', 'BRIEF.md: Measured limits', 'BRIEF.md: Load figures'],
  },
  {
    scenario: 'replica-failover',
    title: 'Replica lag, then a primary fails over',
    watch: [
      'Replica lag (ms): at 3 min every replica\'s line jumps to the injected spike, 5,000 ms ÷ --speed (Events: "replica lag … ms on all"); reads from replicas can be that stale.',
      'At 6 min db-3 fails while its replica is still behind: Events reads "db-3 failed, db-3-r1 promoted (N writes lost)", N being the writes the replica had not applied yet.',
      "After the promotion db-3 keeps serving, but its box in Postgres servers has no replica line left, and db-3-r1's line ends in Replica lag (ms).",
      'At 9 min Replica lag (ms) drops back to the calm 20 ms (also ÷ --speed). Stale reads and lost writes are counted in the run\'s results, not hidden.',
    ],
    why: [
      'Every Postgres primary streamed to a replica in another zone (12 primaries, 12 replicas), so a failed primary is replaced by promotion, not by restoring a backup.',
      "Reads may go to replicas and be stale by the lag; promotion loses the writes the replica had not applied, and a new replica took ~20 min to provision, so the server runs without one meanwhile.",
      'Instagram ran Postgres master–replica with streaming replication (managed with repmgr) on 12 quadruple extra-large memory instances, and took frequent EBS snapshots as backups.',
    ],
    try: [
      'Press l (replica lag 500 ms): every replica line climbs to 500 ms; press L to bring it back to 20 ms.',
      "Press fail on another server while the lag is high, then again after L: compare the writes lost in the two Events lines.",
    ],
    sources: ['BRIEF.md: Replicas', 'BRIEF.md: The 2011–2012 stack', SEED_TALK, SEED_SECRETS],
  },
  {
    scenario: 'shard-split',
    title: 'Splitting a hot server: moving logical shards, not users',
    watch: [
      'At 3 min a 13th box, db-12, appears in Postgres servers; Events lists "split of 85 shards db-0 → db-12 started", then "… done" once the copy has caught up.',
      "In Postgres servers db-0's box drops from 171 to 86 shards and db-12 shows 85; their share-of-queries bars even out.",
      "Queries/s per database server: db-0's line falls to about half and a new db-12 line starts at the other half: the shards' load moves with them.",
      'Nothing is lost or refused during the copy: the lines in Queries/s per database server carry on while the shards move (the run fails if more than 1% of requests do).',
    ],
    why: [
      'Instagram pre-split its data into thousands of logical shards (13 bits of the id allow 8192; their example used 2000), each a Postgres schema, mapped to far fewer servers.',
      'A move repoints logical shards and never re-hashes: clone the server as a streaming replica, then repoint half its shards to the clone; no 64-bit id changes.',
      'The id carries its shard: 41 bits of milliseconds, 13 bits of logical shard id, 10 bits of sequence, so any app server routes a request by its id alone.',
      'The pressure was memory and disk: the biggest EC2 machine had 68G of memory, and photodb passed 60G months after the vertical split; EBS could not seek fast enough.',
    ],
    try: ['Watch Hottest shards before and after the split: a moved shard keeps its number but is listed under db-12.'],
    sources: ['BRIEF.md: Sharding', 'BRIEF.md: IDs', SEED_TALK],
  },
  {
    scenario: 'hash-vs-range',
    title: 'Hash vs range sharding under a signup surge',
    watch: [
      'Run it twice, -e STRATEGY=range then -e STRATEGY=modulo. With range, Queries/s per database server has one line far above the rest, handing off only when its ranges fill.',
      'The share-of-queries bars in Postgres servers: range gives one full bar beside eleven short ones; modulo keeps the 12 close (the threshold wants median server skew under 3).',
      "Hottest shards: with range the top shard is the newest range, full of the latest signups; with modulo the top entries are the celebrities' shards, where followers' follows land.",
    ],
    why: [
      'Under a surge like the Android launch (~23/s for 12 hours), range sharding as in MongoDB sends every new user to the newest range: one hot shard, one hot server.',
      "Instagram placed users by id over pre-split logical shards (13 bits allow 8192), so consecutive signups spread evenly over all 12 primaries' shards.",
      'New users are busy users: they follow, post and read at once. Under range sharding all 1M signups of the first 12 hours would have landed on the newest ranges, one at a time.',
    ],
    try: [
      "During the range run press s (queries +5 ms): the hot server's pgbouncer pool fills and shows waiters first; in the modulo run the same press spreads over all 12.",
    ],
    sources: ['BRIEF.md: Sharding', 'BRIEF.md: Load figures', SEED_TALK],
  },
  {
    scenario: 'ci-gate',
    title: 'The CI performance gate: a steady 2012 mix',
    watch: [
      'A six-second run at fixed rates (4 signups, 5 uploads, 18 likes, 50 feed reads a second): Queries/s per database server should be flat; a trend inside the run is a finding.',
      'Cache hit ratio per node: leases are on, and the gate wants an average above 0.6; Fan-out: queue depth should return to 0 well within the 5,000 ms delivery budget.',
      'With -e SLOW_DB_MS=N every query takes N ms longer: the pgbouncer pools in Postgres servers fill sooner (in use/32, then waiters), the regression the gate must catch.',
    ],
    why: [
      'The mix keeps the brief\'s ratios (Oct 2011: >25 photos/s and 90 likes/s), scaled down 5× so that a CI runner serves all of it on time.',
      "Instagram's third principle was instrument everything: Munin plugins graphed app figures such as signups and photos per second across more than 100 instances.",
      'Speed was defended, not assumed: among the lessons of the 1M-user Android launch was to focus on optimisation and find ways to make the system twice as fast.',
    ],
    sources: ['BRIEF.md: Load figures', SEED_TALK, SEED_SECRETS],
  },
];

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** The lesson of each growth event, by scenario name (calibrate*.ts are machine calibrations, not growth events: none). */
export const LESSONS: Record<string, Lesson> = deepFreeze(Object.fromEntries(lessons.map((l) => [l.scenario, l])));

/**
 * The lesson for a scenario: its name (`cache-node-loss`), or its file or path
 * (`scenarios/cache-node-loss.ts`); null for no scenario or one without a lesson.
 */
export function lessonFor(scenario: string | null | undefined): Lesson | null {
  if (typeof scenario !== 'string') return null;
  const name = scenario
    .trim()
    .split(/[\\/]/)
    .pop()!
    .replace(/\.(?:ts|mts|js|mjs)$/, '');
  return Object.hasOwn(LESSONS, name) ? LESSONS[name]! : null;
}
