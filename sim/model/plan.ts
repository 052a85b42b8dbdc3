// From a scenario file to what the simulator runs: each exec function's declared steps compiled to
// a small program (ops, choices, jumps), and each k6 scenario's executor turned into arrivals (open
// executors) or closed loops of VUs. The numbers come from the scenario's resolved k6 options — the
// same object the live runner schedules from — so no rate, duration or count is written twice.

import { DEFAULT_CHECKS, type AdminAction, type Step, type Who, type Whom, type Work } from '../../scenarios/lib/work-types.ts';
import { parseTags } from '../parts/tags.ts';
import { simError } from '../engine/errors.ts';

export const OPS = ['signup', 'follow', 'upload', 'feed', 'user_media', 'like', 'comment', 'media', 'admin'] as const;
export type OpName = (typeof OPS)[number];
/** The route name (k6 `name` tag) each op's request carries, as the live scenarios tag them. */
export const ROUTE_OF: Record<OpName, string> = { signup: 'signup', follow: 'follow', upload: 'upload', feed: 'feed', user_media: 'user_media', like: 'like', comment: 'comment', media: 'media', admin: 'sim_admin' };
/** The live route (method and Fastify pattern) each op's request reaches, as the work meter names it (admin: none). */
export const LIVE_ROUTE_OF: Record<OpName, string | null> = {
  signup: 'POST /v1/accounts',
  follow: 'POST /v1/users/:id/relationship',
  upload: 'POST /v1/media',
  feed: 'GET /v1/users/self/feed',
  user_media: 'GET /v1/users/:id/media/recent',
  like: 'POST /v1/media/:id/likes',
  comment: 'POST /v1/media/:id/comments',
  media: 'GET /v1/media/:id',
  admin: null,
};
export const METHOD_OF: Record<OpName, string> = { signup: 'POST', follow: 'POST', upload: 'POST', feed: 'GET', user_media: 'GET', like: 'POST', comment: 'POST', media: 'GET', admin: 'POST' };

export const WHO = { new: 0, user: 1, celebrity: 2 } as const;

export interface OpInstr {
  kind: 'op';
  op: OpName;
  who: number;
  /** Probability that the target is a celebrity (else `whomWho`). */
  whomCeleb: number;
  whomWho: number;
  count: number;
  page: number;
  admin: AdminAction | null;
  sleepMs: number;
  /** The k6 check the live function makes on the answer (null: none) and the statuses that pass it. */
  check: string | null;
  ok: number[];
  /** A custom k6 counter the live function adds 1 to on success (signups_completed). */
  counter: string | null;
  /** An upload's hashtags, per caption the live function picks from (uniformly); [] for other ops. */
  tags: string[][];
}
export type Instr = OpInstr | { kind: 'choice'; cum: number[]; to: number[] } | { kind: 'jump'; to: number } | { kind: 'sleep'; ms: number };

function who(w: Who | undefined, where: string): number {
  if (w === undefined) return WHO.user;
  if (!(w in WHO)) throw simError('SG_ERR_INVALID_PARAM', `${where}: unknown account "${String(w)}" (new, user or celebrity)`);
  return WHO[w];
}

function whom(w: Whom | undefined, where: string): { celeb: number; who: number } {
  if (w !== null && typeof w === 'object') {
    const p = Number(w.celebrity);
    if (!(p >= 0 && p <= 1)) throw simError('SG_ERR_INVALID_PARAM', `${where}: { celebrity: p } needs 0 ≤ p ≤ 1`);
    return { celeb: p, who: WHO.user };
  }
  const c = who(w, where);
  return c === WHO.celebrity ? { celeb: 1, who: WHO.user } : { celeb: 0, who: c };
}

/** Compiles one exec function's steps. */
export function compileSteps(steps: readonly Step[], where: string): Instr[] {
  const out: Instr[] = [];
  const emit = (list: readonly Step[]): void => {
    for (const s of list) {
      const at = `${where}: step ${JSON.stringify(s).slice(0, 80)}`;
      if (s.op === 'choice') {
        const choice: Instr = { kind: 'choice', cum: [], to: [] };
        out.push(choice);
        const ends: Array<{ kind: 'jump'; to: number }> = [];
        let cum = 0;
        for (const b of s.branches) {
          if (!(b.p >= 0)) throw simError('SG_ERR_INVALID_PARAM', `${at}: a branch probability must be ≥ 0`);
          cum += b.p;
          choice.cum.push(cum);
          choice.to.push(out.length);
          emit(b.steps);
          const j = { kind: 'jump' as const, to: -1 };
          out.push(j);
          ends.push(j);
        }
        if (Math.abs(cum - 1) > 1e-9) throw simError('SG_ERR_INVALID_PARAM', `${at}: branch probabilities sum to ${cum}, not 1`);
        for (const j of ends) j.to = out.length;
        continue;
      }
      const raw = s as unknown as { op: string; seconds?: number };
      if (raw.op === 'sleep') {
        const seconds = Number(raw.seconds ?? 0);
        if (!(Number.isFinite(seconds) && seconds >= 0)) throw simError('SG_ERR_INVALID_PARAM', `${at}: a sleep's seconds must be a number ≥ 0 (got ${String(raw.seconds)})`);
        out.push({ kind: 'sleep', ms: 1000 * seconds });
        continue;
      }
      if (!(OPS as readonly string[]).includes(raw.op)) throw simError('SG_ERR_INVALID_PARAM', `${at}: unknown op "${raw.op}"`);
      const r = s as Step & { who?: Who; whom?: Whom; owner?: Whom; count?: number; check?: string; ok?: number[]; counter?: string; caption?: string | string[] };
      const target = whom(r.whom ?? r.owner, at);
      const count = r.op === 'follow' ? Math.max(0, Math.round(r.count ?? 1)) : 1;
      const page = r.op === 'feed' ? (r.count ?? 20) : r.op === 'user_media' ? (r.count ?? 5) : 0;
      out.push({ kind: 'op', op: r.op as OpName, who: who(r.who, at), whomCeleb: target.celeb, whomWho: target.who, count, page, admin: r.op === 'admin' ? (s as AdminAction) : null, sleepMs: 0, check: r.op in DEFAULT_CHECKS ? (r.check ?? DEFAULT_CHECKS[r.op as keyof typeof DEFAULT_CHECKS]) : null, ok: r.ok ?? [200], counter: r.op === 'signup' ? (r.counter ?? null) : null, tags: r.op === 'upload' ? (Array.isArray(r.caption) ? r.caption : [r.caption ?? '']).map((c) => parseTags(c)) : [] });
    }
  };
  emit(steps);
  return out;
}

/** The subset of the runner's ResolvedScenario the simulator reads (after --scale; --speed is 1). */
export type ScenarioOptions = { name: string; exec: string; startTimeMs: number; gracefulStopMs: number } & (
  | { executor: 'shared-iterations' | 'per-vu-iterations'; vus: number; iterations: number; maxDurationMs: number }
  | { executor: 'constant-vus'; vus: number; durationMs: number }
  | { executor: 'ramping-vus'; startVUs: number; stages: Array<{ durationMs: number; target: number }>; gracefulRampDownMs: number }
  | { executor: 'constant-arrival-rate'; rate: number; timeUnitMs: number; durationMs: number; preAllocatedVUs: number; maxVUs: number }
  | { executor: 'ramping-arrival-rate'; startRate: number; timeUnitMs: number; stages: Array<{ durationMs: number; target: number }>; preAllocatedVUs: number; maxVUs: number }
);

export interface PlannedScenario {
  name: string;
  exec: string;
  program: Instr[];
  options: ScenarioOptions;
  /** When the scenario's regular end is (ms from the start). */
  endMs: number;
}

/** The refusal for a script the simulator cannot read: names what to declare. */
export function missingDeclarations(script: string, missing: string[], hasWork: boolean): Error {
  const what = hasWork
    ? `its \`work\` export declares no steps for ${missing.map((m) => `"${m}"`).join(', ')}`
    : `it exports no \`work\` declarations (steps for ${missing.map((m) => `"${m}"`).join(', ')})`;
  return simError(
    'SG_ERR_INVALID_PARAM',
    `${script} cannot be simulated: ${what}. Declare what one iteration of each exec function does — export const work = { ${missing[0] ?? 'default'}: [{ op: 'feed', who: 'user' }] } (see scenarios/lib/work.ts) — and the base population (export const population = { accounts, avgFollows, celebrities, mediaPerUser }).`,
  );
}

export function planScenarios(script: string, scenarios: readonly ScenarioOptions[], work: Work | undefined): PlannedScenario[] {
  const missing = scenarios.map((s) => s.exec).filter((e, i, a) => a.indexOf(e) === i && !(work && Array.isArray(work[e])));
  if (!work || missing.length) throw missingDeclarations(script, missing, Boolean(work));
  return scenarios.map((s) => ({ name: s.name, exec: s.exec, program: compileSteps(work[s.exec]!, `work.${s.exec}`), options: s, endMs: scenarioEndMs(s) }));
}

export function scenarioEndMs(s: ScenarioOptions): number {
  switch (s.executor) {
    case 'shared-iterations':
    case 'per-vu-iterations':
      return s.startTimeMs + s.maxDurationMs;
    case 'constant-vus':
    case 'constant-arrival-rate':
      return s.startTimeMs + s.durationMs;
    case 'ramping-vus':
    case 'ramping-arrival-rate':
      return s.startTimeMs + s.stages.reduce((a, x) => a + x.durationMs, 0);
  }
}

/**
 * Start times of an arrival-rate scenario's iterations (ms from the test start), as k6 spaces them:
 * the i-th iteration starts when the integral of the rate reaches i. Calls `emit` for each, in order.
 */
export function arrivalTimes(s: Extract<ScenarioOptions, { executor: 'constant-arrival-rate' | 'ramping-arrival-rate' }>): { next(): number } {
  if (s.executor === 'constant-arrival-rate') {
    const interval = s.rate > 0 ? s.timeUnitMs / s.rate : Infinity;
    let i = 0;
    return {
      next: () => {
        const t = i * interval;
        if (!(t < s.durationMs)) return -1;
        i++;
        return s.startTimeMs + t;
      },
    };
  }
  // Ramping: stage by stage, rate linear from r0 to r1 (per ms) over D; N(t) = r0·t + (r1 − r0)·t²/(2D).
  let stage = 0;
  let stageStart = 0;
  let r0 = s.startRate / s.timeUnitMs;
  let done = 0; // iterations started before this stage, as a real count (integral so far)
  let k = 0; // iterations emitted
  return {
    next: () => {
      for (;;) {
        const st = s.stages[stage];
        if (!st) return -1;
        const D = st.durationMs;
        const r1 = st.target / s.timeUnitMs;
        const need = k - done; // iterations into this stage (the k-th starts when the integral reaches k)
        const total = D > 0 ? ((r0 + r1) * D) / 2 : 0;
        if (need < total - 1e-9) {
          let t: number;
          const a = (r1 - r0) / (2 * D);
          if (Math.abs(a) < 1e-15) t = need / r0;
          else t = (-r0 + Math.sqrt(r0 * r0 + 4 * a * need)) / (2 * a);
          k++;
          return s.startTimeMs + stageStart + Math.max(0, Math.min(D, t));
        }
        done += total;
        stageStart += D;
        r0 = r1;
        stage++;
      }
    },
  };
}
