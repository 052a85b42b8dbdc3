// A calibration profile: what the parts and routes of the live service cost on one machine at one
// commit, as `scalegram calibrate` measured them, mapped onto the topology config's `capacity`
// section so that `scalegram simulate --calibration FILE` models this machine instead of 2012's.
//
// The profile holds costs (time) only. The work each request does (which lookups, queries, Redis
// commands) is still computed by the simulator's own rules; the per-route work recorded here is
// for the reader, never read back.

import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileSync } from 'node:fs';
import { simError } from './engine/errors.ts';
import type { TopologyInput } from './topology-config.ts';

export const CALIBRATION_FORMAT = 'scalegram-calibration/1';

const Ms = (description: string) => Type.Number({ minimum: 0, maximum: 60_000, description });
const Us = (description: string) => Type.Number({ minimum: 0, maximum: 60_000_000, description });

export const MachineSchema = Type.Object(
  {
    cpuModel: Type.String({ description: 'os.cpus()[0].model' }),
    cores: Type.Integer({ minimum: 1, description: 'Logical cores (os.availableParallelism()).' }),
    nodeVersion: Type.String({ description: 'process.version' }),
    hostname: Type.String({ description: 'os.hostname()' }),
    platform: Type.String({ description: 'process.platform and process.arch' }),
  },
  { additionalProperties: false },
);
export type Machine = Static<typeof MachineSchema>;

export const CommitSchema = Type.Object(
  {
    sha: Type.String({ pattern: '^([0-9a-f]{40}|unknown)$', description: 'git rev-parse HEAD, or "unknown" outside a git checkout.' }),
    dirty: Type.Boolean({ description: 'Uncommitted changes to tracked files when measured.' }),
  },
  { additionalProperties: false },
);
export type Commit = Static<typeof CommitSchema>;

/** The costs, named and shaped as the topology config's `capacity` fields they set (sim/topology-config.ts). */
export const CostsSchema = Type.Object(
  {
    cpuMs: Type.Object(
      {
        feed: Ms('App CPU per feed page, fitted (ms).'),
        user_media: Ms("App CPU per user's recent media page, fitted (ms)."),
        media: Ms('App CPU per media read, fitted (ms).'),
        like: Ms('App CPU per like, fitted (ms).'),
        comment: Ms('App CPU per comment, fitted (ms).'),
        follow: Ms('App CPU per follow, fitted (ms).'),
        upload: Ms('App CPU per upload without the resize, fitted (ms).'),
        signup: Ms('App CPU per signup without the password hash, fitted (ms).'),
      },
      { additionalProperties: false },
    ),
    cpuSpread: Type.Optional(
      Type.Object(
        {
          feed: Type.Number({ minimum: 1, maximum: 1000 }),
          user_media: Type.Number({ minimum: 1, maximum: 1000 }),
          media: Type.Number({ minimum: 1, maximum: 1000 }),
          like: Type.Number({ minimum: 1, maximum: 1000 }),
          comment: Type.Number({ minimum: 1, maximum: 1000 }),
          follow: Type.Number({ minimum: 1, maximum: 1000 }),
          upload: Type.Number({ minimum: 1, maximum: 1000 }),
          signup: Type.Number({ minimum: 1, maximum: 1000 }),
        },
        { additionalProperties: false, description: "Per route, p99 ÷ median of the app CPU: (p99Ms − modelledWorkMs) ÷ cpuMs, at least 1." },
      ),
    ),
    wakeMs: Type.Optional(Ms('The wake-up a server owes after a long idle (ms): the requests that follow pay it, wakeShare of what is left each, fitted with wakeTauMs and wakeShare to feed reads after idle times.')),
    wakeTauMs: Type.Optional(Type.Number({ minimum: 0.001, maximum: 60_000, description: 'How fast the wake-up grows with the idle time (ms), fitted from a read after a short idle.' })),
    wakeShare: Type.Optional(Type.Number({ minimum: 0.01, maximum: 1, description: "The share of the wake-up still owed that each request pays, fitted from a read that follows the first after a long idle at once." })),
    missCpuMs: Type.Optional(
      Type.Object(
        {
          feed: Ms('App CPU per key a feed page missed, fitted (ms).'),
          user_media: Ms("App CPU per key a user's media page missed, fitted (ms)."),
          media: Ms('App CPU per key a media read missed, fitted (ms).'),
          like: Ms('App CPU per key a like missed, fitted (ms).'),
          comment: Ms('App CPU per key a comment missed, fitted (ms).'),
          follow: Ms('App CPU per key a follow missed, fitted (ms).'),
          upload: Ms('App CPU per key an upload missed, fitted (ms).'),
          signup: Ms('App CPU per key a signup missed, fitted (ms).'),
        },
        { additionalProperties: false },
      ),
    ),
    passwordHashMs: Ms('One Argon2id hash, measured alone (ms).'),
    queryMs: Type.Object(
      {
        pkRead: Ms('A read by primary key through the database cluster (ms).'),
        rangeRead: Ms('A page of 20 rows by index range (ms).'),
        write: Ms('A one-row write on a primary, logged for its replica (ms).'),
      },
      { additionalProperties: false },
    ),
    memcachedOpUs: Us('One cache request besides its keys (µs): a one-key get less the per-key cost.'),
    memcachedKeyUs: Us('Each further key of a multiget (µs).'),
    redisOpUs: Us('One feed-store Redis command (µs).'),
    redisPushUs: Type.Optional(Us("One delivery of a fan-out chunk (µs): a chunk's push of a media id to 1,000 feed lists, on the feed primary and its replica, over 1,000.")),
    jobOverheadMs: Ms('Queueing and running an empty job (ms).'),
    resizeMs: Ms('The 150/306/612 px JPEGs of the scenario photo (ms).'),
    blobPutMs: Ms('Putting the three sizes into the blob store (ms).'),
  },
  { additionalProperties: false },
);
export type Costs = Static<typeof CostsSchema>;

const PartSchema = Type.Object(
  {
    what: Type.String(),
    samples: Type.Integer({ minimum: 1 }),
    p50Us: Type.Number({ minimum: 0 }),
    p99Us: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);

const OutcomeSchema = Type.Object(
  {
    requests: Type.Integer({ minimum: 0 }),
    serverP50Ms: Type.Number({ minimum: 0, description: 'Server-side time (first hook to answer), median (ms).' }),
    serverP99Ms: Type.Number({ minimum: 0 }),
    work: Type.Record(Type.String(), Type.Number(), { description: "Work per request of this outcome's requests." }),
    modelledWorkMs: Type.Number({ minimum: 0, description: "That work's cost at the measured part costs (ms)." }),
    appMs: Type.Number({ minimum: 0, description: 'serverP50Ms − modelledWorkMs, at least 0: the app CPU of this outcome.' }),
  },
  { additionalProperties: false },
);

const RouteSchema = Type.Object(
  {
    route: Type.String({ description: 'The live route (method and pattern), as the work meter names it.' }),
    requests: Type.Integer({ minimum: 0 }),
    failed: Type.Integer({ minimum: 0 }),
    p50Ms: Type.Number({ minimum: 0 }),
    p99Ms: Type.Number({ minimum: 0 }),
    work: Type.Record(Type.String(), Type.Number(), { description: 'Work per request, from the work meter (for the reader; the simulator never reads it).' }),
    modelledWorkMs: Type.Number({ minimum: 0, description: "The work's cost at the measured part costs (ms)." }),
    cpuMs: Type.Number({ minimum: 0, description: "The fitted app CPU: httpMs plus the app CPU of the route's commonest all-hit outcome (without outcomes: p50Ms − modelledWorkMs)." }),
    httpMs: Type.Optional(Type.Number({ minimum: 0, description: "p50Ms less the route's server-side median: the client, the connection and Fastify before the first hook (ms)." })),
    missCpuMs: Type.Optional(Type.Number({ minimum: 0, description: 'App CPU per missed key: (the miss outcome\'s appMs − the hit outcome\'s) ÷ keys missed per request (ms).' })),
    outcomes: Type.Optional(Type.Record(Type.String(), OutcomeSchema, { description: 'Per outcome: cache hit or miss, then the reads\' source (replica, primary, none).' })),
  },
  { additionalProperties: false },
);

export const CalibrationSchema = Type.Object(
  {
    format: Type.Literal(CALIBRATION_FORMAT),
    measuredAt: Type.String({ description: 'ISO time of the measurement.' }),
    seed: Type.Integer({ minimum: 0 }),
    topology: Type.String({ description: 'The topology the live stack was built from.' }),
    stack: Type.Optional(
      Type.Union([Type.Literal('embedded'), Type.Literal('real')], {
        description: "The parts it was measured on: embedded (in process; the default when absent) or real (scalegram calibrate --stack real: memcached processes, Redis, RabbitMQ, and the databases as `databases` says).",
      }),
    ),
    databases: Type.Optional(
      Type.Union([Type.Literal('embedded'), Type.Literal('postgres')], {
        description: 'Where the store was: embedded SQLite (the default when absent) or Postgres servers (a stack\'s, or $POSTGRES_SERVERS).',
      }),
    ),
    iterations: Type.Integer({ minimum: 1, description: 'Iterations of the calibration workload (one of each route each).' }),
    machine: MachineSchema,
    commit: CommitSchema,
    costs: CostsSchema,
    app: Type.Object(
      {
        appServers: Type.Integer({ minimum: 1, maximum: 10_000 }),
        workersPerServer: Type.Integer({ minimum: 1, maximum: 1024 }),
      },
      { additionalProperties: false, description: 'The live server: one Node event loop.' },
    ),
    wake: Type.Optional(
      Type.Object(
        {
          backToBackP50Ms: Type.Number({ minimum: 0 }),
          afterShortIdleP50Ms: Type.Number({ minimum: 0 }),
          afterLongIdleP50Ms: Type.Number({ minimum: 0 }),
          /** A pair after a long idle: the first read's median, and the second's (sent at once after the first). */
          burstFirstP50Ms: Type.Optional(Type.Number({ minimum: 0 })),
          burstNextP50Ms: Type.Optional(Type.Number({ minimum: 0 })),
          shortIdleMs: Type.Number({ minimum: 0 }),
          longIdleMs: Type.Number({ minimum: 0 }),
        },
        { additionalProperties: false, description: 'The wake-up measurement (scenarios/calibrate-idle.ts): a warm feed read\'s median back to back, after each idle time, and of a pair after the long idle (the first, then the one sent at once after it).' },
      ),
    ),
    parts: Type.Record(Type.String(), PartSchema),
    routes: Type.Record(Type.String(), RouteSchema),
    notes: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);
export type Calibration = Static<typeof CalibrationSchema>;

/** Parses and validates a profile's text; SG_ERR_CALIBRATION_INVALID names the first bad field. */
export function parseCalibration(text: string, source = 'calibration profile'): Calibration {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw simError('SG_ERR_CALIBRATION_INVALID', `${source} is not valid JSON: ${(e as Error).message}`);
  }
  for (const e of Value.Errors(CalibrationSchema, value)) {
    const field = e.path === '' ? '(root)' : e.path.slice(1).replaceAll('/', '.');
    throw simError('SG_ERR_CALIBRATION_INVALID', `${source} is not a calibration profile (${CALIBRATION_FORMAT}): ${field}: ${e.message}`, { field });
  }
  return value as Calibration;
}

export function loadCalibration(path: string): Calibration {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw simError('SG_ERR_CALIBRATION_INVALID', `cannot read calibration profile ${path}: ${(e as Error).message}`);
  }
  return parseCalibration(text, path);
}

/** The topology overrides a profile stands for: its costs and the live server's one event loop. */
export function calibrationOverrides(p: Calibration): TopologyInput {
  // The live server is one event loop: the parts' work is its thread's too (capacity.sharedThread).
  return { capacity: { ...structuredClone(p.costs), appServers: p.app.appServers, workersPerServer: p.app.workersPerServer, sharedThread: true } };
}

/** Whether a profile was measured on this machine (the commit aside). */
export function sameMachine(a: Machine, b: Machine): boolean {
  return a.hostname === b.hostname && a.cpuModel === b.cpuModel && a.cores === b.cores && a.nodeVersion === b.nodeVersion && a.platform === b.platform;
}

/**
 * What differs between where a profile was measured and here: one line each, empty when nothing
 * does. `sameCode` (from git: no change to anything but profiles and prose between the profile's
 * commit and this one) lets a profile committed after its measurement stay quiet.
 */
export function calibrationWarnings(p: Calibration, here: { machine: Machine; commit: Commit; sameCode?: boolean }): string[] {
  const out: string[] = [];
  const m = p.machine;
  const h = here.machine;
  const diffs: string[] = [];
  if (m.hostname !== h.hostname) diffs.push(`host ${m.hostname} (here ${h.hostname})`);
  if (m.cpuModel !== h.cpuModel) diffs.push(`CPU ${m.cpuModel} (here ${h.cpuModel})`);
  if (m.cores !== h.cores) diffs.push(`${m.cores} cores (here ${h.cores})`);
  if (m.nodeVersion !== h.nodeVersion) diffs.push(`Node ${m.nodeVersion} (here ${h.nodeVersion})`);
  if (m.platform !== h.platform) diffs.push(`${m.platform} (here ${h.platform})`);
  if (diffs.length) out.push(`the calibration profile was measured on another machine: ${diffs.join(', ')}; its costs may not be this machine's`);
  if (p.commit.sha !== here.commit.sha && here.sameCode !== true) out.push(`the calibration profile was measured at commit ${p.commit.sha.slice(0, 12)}, this is ${here.commit.sha.slice(0, 12)}: the code's costs may have changed since`);
  else if (p.commit.dirty) out.push('the calibration profile was measured on uncommitted changes: the code it measured may not be this code');
  if (here.commit.dirty) out.push('this checkout has uncommitted changes: the code here may not be the code the profile measured');
  return out;
}
