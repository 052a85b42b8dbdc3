// What one iteration of each exec function does, declared as data: which v1 operations, how many,
// on whom. `scalegram simulate` reads these declarations (with the k6 `options` for rates, phases
// and start times, and `population` for the base the scenario starts from); the live functions are
// made from the same declarations (`iteration()` below), so no rate, size or count is written twice.
// Like every file under scenarios/, this imports only k6 modules and scenario files.
//
// A live iteration acts as one account per `Who` (picked once, on first use) and picks the accounts
// it acts on (`whom`, `owner`) afresh at each use, with Math.random (seeded by the runner's --seed).
// A failed signup or a `user_media` that returned nothing ends the iteration: what follows needs
// the account or the photo. `test/scenario-work.test.ts` proves each scenario's live functions make
// exactly the requests their declarations expand to (`expandSteps`).

import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import * as api from './api.ts';
export * from './work-types.ts';
import { adminRequest, DEFAULT_CHECKS, type Checked, type Population, type Step, type Who, type Whom } from './work-types.ts';

/**
 * The budget of one POST /_sim/seed call (sim/workload/population.ts: MAX_SEED_USERS,
 * MAX_SEED_FOLLOWS, MAX_SEED_MEDIA; a test holds them equal): live runs seed at most this much.
 */
export const SEED_BUDGET = { accounts: 1_000_000, follows: 5_000_000, media: 1_000_000 } as const;

/**
 * The accounts a live run seeds: `exactly` if given (an override such as android-launch's
 * BASE_ACCOUNTS), else the full-scale population × scale; at least `minAccounts`, and at most what
 * one seeding call accepts with the population's follows and photos per account.
 */
export function liveAccounts(p: Population, scale: number, exactly?: number): number {
  const wanted = Math.max(p.minAccounts ?? 1, Math.round(exactly ?? p.accounts * scale));
  const caps: number[] = [SEED_BUDGET.accounts];
  if (p.avgFollows > 0) caps.push(Math.floor(SEED_BUDGET.follows / p.avgFollows));
  if (p.mediaPerUser > 0) caps.push(Math.floor(SEED_BUDGET.media / p.mediaPerUser));
  return Math.max(1, Math.min(wanted, ...caps));
}

// ---------------------------------------------------------------------------------------------
// Live: setup and exec functions made from the declarations, through scenarios/lib/api.ts.

/** The most accounts the default roster lists (one GET /_sim/users page): above it, an evenly spaced sample. */
export const ROSTER_MAX = 10_000;

/** What a scenario's setup hands its exec functions: accounts to act as, and the celebrities. */
export interface SetupData {
  /** Base accounts, with their tokens (`user` picks from these). */
  users: api.SeededUser[];
  /** The most-followed seeded accounts, most followed first (`celebrity` picks from these). */
  celebrities: api.SeededUser[];
}

export interface SeedOptions {
  /** Seed exactly this many accounts whatever the scale (still at least minAccounts, within the budget). */
  accounts?: number;
  /**
   * The accounts `user` picks from: the first N seeded (GET /_sim/users), or 'sample': the seeding
   * answer's sample (20 accounts, celebrities first). By default every seeded account up to
   * ROSTER_MAX, and above it an evenly spaced ROSTER_MAX of them (every k-th by signup), so that
   * `user` is a base account picked uniformly, as the simulator picks it.
   */
  roster?: number | 'sample';
  /** Leave the celebrities out of `users`. */
  excludeCelebrities?: boolean;
}

/**
 * A scenario's setup: seeds the population (× __ENV.SCALE, see liveAccounts) with __ENV.SEED
 * (default 1), and lists the accounts to act as and the celebrities (the most followed of the
 * seeding answer's sample).
 */
export async function seedPopulation(p: Population, opts: SeedOptions = {}): Promise<SetupData> {
  const accounts = liveAccounts(p, Number(__ENV.SCALE || '1'), opts.accounts);
  const seeded = await api.seed({
    users: accounts,
    avgFollows: p.avgFollows,
    celebrities: p.celebrities,
    mediaPerUser: p.mediaPerUser,
    ...(p.celebrityReach !== undefined ? { celebrityReach: p.celebrityReach } : {}),
    ...(p.privateFraction !== undefined ? { privateFraction: p.privateFraction } : {}),
    ...(p.warmCaches ? { warmCaches: true } : {}),
    seed: Number(__ENV.SEED || '1'),
  });
  const celebrities = [...seeded.sample].sort((a, b) => (b.followed_by ?? 0) - (a.followed_by ?? 0)).slice(0, p.celebrities);
  const roster = opts.roster;
  const stride = Math.ceil(accounts / ROSTER_MAX);
  let users = roster === 'sample' ? seeded.sample : roster === undefined ? await api.users(0, Math.ceil(accounts / stride), stride) : await api.users(0, Math.min(accounts, roster));
  if (opts.excludeCelebrities) {
    const celebrityIds = new Set(celebrities.map((c) => c.id));
    users = users.filter((u) => !celebrityIds.has(u.id));
  }
  return { users, celebrities };
}

/** Live-only inputs of `iteration`. */
export interface Live {
  /** The bytes uploaded by `upload` steps: `open('./assets/photo.jpg', 'b')` in the scenario's init code. */
  photo?: ArrayBuffer;
}

function pick<T>(list: readonly T[], what: string): T {
  if (list.length === 0) throw new Error(`no ${what} to pick from: the setup listed none`);
  return list[Math.floor(Math.random() * list.length)]!;
}

interface IterationState {
  data: SetupData;
  actors: Partial<Record<Who, api.SeededUser>>;
  item: string | null;
}

function actor(st: IterationState, who: Who): api.SeededUser {
  if (who === 'new') {
    const u = st.actors.new;
    if (!u) throw new Error("a step acts as 'new' before any signup");
    return u;
  }
  return (st.actors[who] ??= pick(who === 'user' ? st.data.users : st.data.celebrities, who === 'user' ? 'users' : 'celebrities'));
}

function target(st: IterationState, whom: Whom): api.SeededUser {
  if (typeof whom === 'object') return Math.random() < whom.celebrity ? pick(st.data.celebrities, 'celebrities') : pick(st.data.users, 'users');
  if (whom === 'new') return actor(st, 'new');
  return pick(whom === 'user' ? st.data.users : st.data.celebrities, whom === 'user' ? 'users' : 'celebrities');
}

function checkStatus(res: { status: number }, step: Checked, fallback: string): void {
  const ok = step.ok ?? [200];
  check(res, { [step.check ?? fallback]: (r) => ok.includes(r.status) });
}

/** Throws when a declaration cannot run live (caught when the scenario loads, not mid-run). */
function validate(steps: readonly Step[], live: Live, state = { signedUp: false, media: false }): void {
  for (const step of steps) {
    switch (step.op) {
      case 'signup':
        state.signedUp = true;
        break;
      case 'upload':
        if (!live.photo) throw new Error("an 'upload' step needs the photo: iteration(steps, { photo: open('./assets/photo.jpg', 'b') })");
        break;
      case 'user_media':
        state.media = true;
        break;
      case 'like':
      case 'comment':
      case 'media':
        if (!state.media) throw new Error(`a '${step.op}' step needs a 'user_media' step before it`);
        break;
      case 'sleep':
        if (!(Number.isFinite(step.seconds) && step.seconds >= 0)) throw new Error(`a 'sleep' step's seconds must be a number ≥ 0 (got ${String(step.seconds)})`);
        break;
      case 'choice': {
        const sum = step.branches.reduce((a, b) => a + b.p, 0);
        if (Math.abs(sum - 1) > 1e-9) throw new Error(`a choice's probabilities sum to ${sum}, not 1`);
        for (const b of step.branches) validate(b.steps, live, { ...state });
        break;
      }
      default:
        break;
    }
    if ('who' in step && step.who === 'new' && !state.signedUp) throw new Error(`a '${step.op}' step acts as 'new' before any signup`);
  }
}

/** Runs steps in order; false when the iteration ended early (a failed signup, no media). */
async function runSteps(steps: readonly Step[], st: IterationState, live: Live, counters: Map<string, Counter>): Promise<boolean> {
  for (const step of steps) {
    switch (step.op) {
      case 'signup': {
        const n = exec.scenario.iterationInTest;
        const user = await api.signup(`${step.username ?? 'user'}_${exec.vu.idInTest}_${n}`, `${step.fullName ?? 'User'} ${n}`);
        if (!check(user, { [step.check ?? DEFAULT_CHECKS.signup]: (u) => u !== null })) return false;
        st.actors.new = user!;
        if (step.counter) counters.get(step.counter)!.add(1);
        break;
      }
      case 'follow': {
        const me = actor(st, step.who);
        for (let i = 0; i < (step.count ?? 1); i++) checkStatus(await api.follow(me.access_token, target(st, step.whom).id), step, DEFAULT_CHECKS.follow);
        break;
      }
      case 'upload': {
        const me = actor(st, step.who);
        const caption = Array.isArray(step.caption) ? pick(step.caption, 'captions') : (step.caption ?? '');
        checkStatus(await api.upload(me.access_token, live.photo!, caption), step, DEFAULT_CHECKS.upload);
        break;
      }
      case 'feed':
        checkStatus(await api.feed(actor(st, step.who).access_token, step.count ?? 20), step, DEFAULT_CHECKS.feed);
        break;
      case 'user_media': {
        const me = actor(st, step.who);
        const res = await api.recentMedia(me.access_token, target(st, step.owner).id, step.count ?? 5);
        const items = res.status === 200 ? (res.json('data') as Array<{ id: string }>) : [];
        if (items.length === 0) return false;
        st.item = (step.item === 'any' ? pick(items, 'media') : items[0]!).id;
        break;
      }
      case 'like':
        checkStatus(await api.like(actor(st, step.who).access_token, st.item!), step, DEFAULT_CHECKS.like);
        break;
      case 'comment':
        checkStatus(await api.comment(actor(st, step.who).access_token, st.item!, step.text ?? 'nice'), step, DEFAULT_CHECKS.comment);
        break;
      case 'media':
        checkStatus(await api.media(actor(st, step.who).access_token, st.item!), step, DEFAULT_CHECKS.media);
        break;
      case 'sleep':
        await sleep(step.seconds);
        break;
      case 'admin': {
        const { path, body } = adminRequest(step, Number(__ENV.SPEED || '1'));
        await api.admin(path, body);
        break;
      }
      case 'choice': {
        const r = Math.random();
        let acc = 0;
        let branch = step.branches[step.branches.length - 1]!;
        for (const b of step.branches) {
          acc += b.p;
          if (r < acc) {
            branch = b;
            break;
          }
        }
        if (!(await runSteps(branch.steps, st, live, counters))) return false;
        break;
      }
    }
  }
  return true;
}

function counterNames(steps: readonly Step[], into: Set<string> = new Set()): Set<string> {
  for (const s of steps) {
    if (s.op === 'signup' && s.counter) into.add(s.counter);
    if (s.op === 'choice') for (const b of s.branches) counterNames(b.steps, into);
  }
  return into;
}

/**
 * The live exec function of a declaration: one call performs one iteration of `steps` through
 * scenarios/lib/api.ts. Call it in init code (`export const signup = iteration(work.signup)`):
 * it checks the declaration and defines its counters there, as k6 requires.
 */
export function iteration(steps: readonly Step[], live: Live = {}): (data: SetupData) => Promise<void> {
  validate(steps, live);
  const counters = new Map([...counterNames(steps)].map((name) => [name, new Counter(name)] as const));
  return async (data: SetupData): Promise<void> => {
    await runSteps(steps, { data, actors: {}, item: null }, live, counters);
  };
}
