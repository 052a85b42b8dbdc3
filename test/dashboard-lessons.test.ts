// The dashboard's lesson panels: one per growth event in scenarios/, short enough for the side panel,
// pointing at things the page shows, and honest about numbers: every figure in a `why` bullet is
// found in ../shared/BRIEF.md or its seeds (the matcher below, tested on its own, can fail).

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LESSONS, lessonFor, type Lesson } from '../dashboard/lessons.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/**
 * Where the sources are: $SCALEGRAM_SHARED, else `shared/` beside this checkout, else beside the
 * checkout it was cloned from (CI clones the working repository into a directory of its own).
 */
function sharedDir(): string {
  if (process.env.SCALEGRAM_SHARED) return process.env.SCALEGRAM_SHARED;
  const beside = fileURLToPath(new URL('../../shared/', import.meta.url));
  if (existsSync(beside)) return beside;
  const origin = spawnSync('git', ['config', '--get', 'remote.origin.url'], { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' }).stdout.trim();
  // Only a clone of a local checkout has sources beside it to find.
  if (origin.startsWith('/') && existsSync(join(origin, '..', 'shared'))) return join(origin, '..', 'shared');
  return beside;
}
const SHARED = sharedDir();
const BRIEF_FILE = join(SHARED, 'BRIEF.md');
const SEEDS_DIR = join(SHARED, 'seeds');
const HAVE_SOURCES = existsSync(BRIEF_FILE) && existsSync(SEEDS_DIR);

/** Growth events: every scenario script but the machine calibrations. */
const SCENARIOS = readdirSync(join(ROOT, 'scenarios'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3));
const GROWTH_EVENTS = SCENARIOS.filter((s) => !s.startsWith('calibrate'));

/** Bullets fit the side panel at 1280×720. */
const MAX_BULLET_CHARS = 220;

// ------------------------------------------------------------------------------ the number matcher

type Dim = 'time' | 'percent' | null;
interface Quantity {
  /** As written, e.g. "1M", "12 hours", "4,096". */
  text: string;
  at: number;
  end: number;
  /** The number times its multiplier (k, M, million, 万 …). */
  value: number;
  multiplier: number;
  dim: Dim;
  /** For time: the value in seconds. */
  seconds: number;
  sigDigits: number;
}

const MULTIPLIERS: Record<string, number> = { k: 1e3, K: 1e3, thousand: 1e3, M: 1e6, million: 1e6, B: 1e9, bn: 1e9, billion: 1e9, G: 1e9, GB: 1e9, T: 1e12, TB: 1e12, 万: 1e4, 亿: 1e8 };
const MULTIPLIER_RE = /^[ \u00a0]?([Tt]housand|[Mm]illion|[Bb]illion|bn|GB|TB|k|K|M|B|G|T|万|亿)(?![A-Za-z])/;
const SECONDS_PER: Record<string, number> = {
  μs: 1e-6, us: 1e-6, ms: 1e-3, s: 1, sec: 1, secs: 1, second: 1, seconds: 1, 秒: 1,
  min: 60, mins: 60, minute: 60, minutes: 60, 分钟: 60, h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600, 小时: 3600, day: 86400, days: 86400, 天: 86400,
};
const TIME_RE = /^[ \u00a0-]?(μs|us|ms|seconds?|secs?|s|minutes?|mins?|hours?|hrs?|h|days?|秒|分钟|小时|天)(?![A-Za-z])/;
const PERCENT_RE = /^ ?%/;
/**
 * A number: digits with thousands separators (comma, no-break or thin space) or plain digits, and
 * an optional fraction. In prose (`strict`) a number glued to a name is part of it, not a figure:
 * p99, db-3, r1.
 */
const NUMBER_RE = (strict: boolean) =>
  new RegExp(`${strict ? '(?<![A-Za-z_\\-\\d.])' : '(?<![\\d.])'}(\\d{1,3}(?:[,\\u00a0\\u2009\\u202f]\\d{3})+(?!\\d)|\\d+)(\\.\\d+)?`, 'gu');

/** Every number in `text`, with its multiplier and unit. `strict` for the prose checked, loose for the sources. */
function quantities(raw: string, strict: boolean): Quantity[] {
  // NFKC: full-width digits and commas become ASCII, the micro sign becomes μ.
  const text = raw.normalize('NFKC');
  const out: Quantity[] = [];
  for (const m of text.matchAll(NUMBER_RE(strict))) {
    const int = m[1]!;
    const frac = m[2] ?? '';
    let end = m.index + m[0].length;
    let multiplier = 1;
    const mm = MULTIPLIER_RE.exec(text.slice(end));
    if (mm) {
      multiplier = MULTIPLIERS[mm[1]!] ?? MULTIPLIERS[mm[1]!.toLowerCase()]!;
      end += mm[0].length;
    }
    let dim: Dim = null;
    let perUnit = 1;
    const tm = TIME_RE.exec(text.slice(end));
    const pm = tm ? null : PERCENT_RE.exec(text.slice(end));
    if (tm) {
      dim = 'time';
      perUnit = SECONDS_PER[tm[1]!]!;
      end += tm[0].length;
    } else if (pm) {
      dim = 'percent';
      end += pm[0].length;
    }
    const digits = (int + frac).replace(/\D/g, '');
    const value = Number(int.replace(/\D/g, '') + frac) * multiplier;
    out.push({ text: text.slice(m.index, end).trim(), at: m.index, end, value, multiplier, dim, seconds: value * perUnit, sigDigits: digits.replace(/^0+/, '').length });
  }
  return out;
}

/** The quantities of the sources, with "30→40M" also read as 30M (the multiplier of a range's end applies to its start). */
function sourceQuantities(text: string): Quantity[] {
  const qs = quantities(text, false);
  const extra: Quantity[] = [];
  const normal = text.normalize('NFKC');
  for (let i = 0; i + 1 < qs.length; i++) {
    const [q, n] = [qs[i]!, qs[i + 1]!];
    if (q.multiplier === 1 && q.dim === null && (n.multiplier !== 1 || n.dim !== null) && /^\s*(?:→|->|–|—|-|~|to)\s*$/.test(normal.slice(q.end, n.at))) {
      const value = q.value * n.multiplier;
      extra.push({ ...q, value, multiplier: n.multiplier, dim: n.dim, seconds: n.dim === 'time' ? (value * n.seconds) / n.value : value });
    }
  }
  return [...qs, ...extra];
}

/** A figure worth checking: two significant digits or more, or a multiplier or unit ("1M", "5 min", "1%"). */
const checked = (q: Quantity) => q.sigDigits >= 2 || q.multiplier !== 1 || q.dim !== null;

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

/** Whether `q` is in `pool`: the same value, and for a time or a percentage the same kind (5 min = 300 s; 12 hours ≠ 12). */
function foundIn(q: Quantity, pool: readonly Quantity[]): boolean {
  if (q.dim === null) return pool.some((s) => close(s.value, q.value));
  if (q.dim === 'time') return pool.some((s) => s.dim === 'time' && close(s.seconds, q.seconds));
  return pool.some((s) => s.dim === q.dim && close(s.value, q.value));
}

/** The checked figures of `prose` that `pool` does not have, as written. */
function unmatched(prose: string, pool: readonly Quantity[]): string[] {
  return quantities(prose, true)
    .filter((q) => checked(q) && !foundIn(q, pool))
    .map((q) => q.text);
}

describe('the number matcher', () => {
  const pool = sourceQuantities('Android launch 1M new users in 12 hours (~23/s); 30→40M users; leases: 17K/s → 1.3K/s; 25,000 signups; p99 up to 5 min; 12小时增加100万新用户; gutter ~1%; >1.5 s');

  it('finds figures written as the sources write them, or in another notation of the same value', () => {
    expect(unmatched('1M new users signed up in 12 hours, ~23/s on average', pool)).toEqual([]);
    expect(unmatched('from 30M to 40M accounts; 1,000,000 signups; 25k on day one; 1 million', pool)).toEqual([]);
    expect(unmatched('the peak fell from 17K/s to 1.3K/s; p99 of 300 s; a gutter of 1%; stuck > 1.5s', pool)).toEqual([]);
  });

  it('reports a wrong figure, a wrong multiplier and a wrong unit', () => {
    expect(unmatched('2M new users in 12 hours', pool)).toEqual(['2M']);
    expect(unmatched('1M new users in 12 minutes', pool)).toEqual(['12 minutes']);
    expect(unmatched('25,001 signups and 17M leases', pool)).toEqual(['25,001', '17M']);
    expect(unmatched('a gutter of 12%, p99 up to 6 min', pool)).toEqual(['12%', '6 min']);
  });

  it('leaves single digits without a unit and the digits of names alone', () => {
    expect(unmatched('6 nodes, 1/6 of the keys, p99, db-37, cache-2, r1', pool)).toEqual([]);
    expect(unmatched('8 nodes', pool)).toEqual([]);
    expect(unmatched('80 nodes', pool)).toEqual(['80']);
  });
});

// ------------------------------------------------------------------------------------- the lessons

const ALL: Lesson[] = Object.values(LESSONS);
const bullets = (l: Lesson) => [...l.watch, ...l.why, ...(l.try ?? [])];

/** What the page shows, by its own names: every `watch` bullet points at one of them. */
const PAGE_NAMES = ['Cache hit ratio per node', 'Queries/s per database server', 'Replica lag', 'Fan-out', 'Events', 'Hottest shards', 'memcached ring', 'Postgres servers', 'job queue', 'pool'];

describe('the lesson panels', () => {
  it('has a lesson for every growth event in scenarios/, and none for the calibrations', () => {
    expect(GROWTH_EVENTS.length).toBeGreaterThanOrEqual(8);
    for (const s of GROWTH_EVENTS) expect(LESSONS[s], `lesson for scenarios/${s}.ts`).toBeDefined();
    for (const s of SCENARIOS.filter((x) => x.startsWith('calibrate'))) expect(lessonFor(s)).toBeNull();
  });

  it('names only scenarios that exist, under their own key', () => {
    for (const [key, l] of Object.entries(LESSONS)) {
      expect(l.scenario).toBe(key);
      expect(existsSync(join(ROOT, 'scenarios', `${key}.ts`)), `scenarios/${key}.ts`).toBe(true);
    }
  });

  it('gives each lesson a title, 2–4 watch and 2–4 why bullets, at most 3 to try, all short plain text', () => {
    for (const l of ALL) {
      expect(l.title.length, l.scenario).toBeGreaterThan(0);
      expect(l.title.length, l.title).toBeLessThanOrEqual(80);
      expect(l.watch.length, `${l.scenario} watch`).toBeGreaterThanOrEqual(2);
      expect(l.watch.length, `${l.scenario} watch`).toBeLessThanOrEqual(4);
      expect(l.why.length, `${l.scenario} why`).toBeGreaterThanOrEqual(2);
      expect(l.why.length, `${l.scenario} why`).toBeLessThanOrEqual(4);
      expect((l.try ?? []).length, `${l.scenario} try`).toBeLessThanOrEqual(3);
      expect(l.sources.length, `${l.scenario} sources`).toBeGreaterThan(0);
      for (const b of [l.title, ...bullets(l)]) {
        expect(b.length, b).toBeLessThan(MAX_BULLET_CHARS);
        expect(b, b).toBe(b.trim());
        // Plain text: no line breaks, no markup (the page escapes what it shows; "<" before a letter is a tag to fix).
        expect(b, b).not.toMatch(/[\n\r\t]|<[A-Za-z/!]|&[a-z]+;/);
      }
    }
  });

  it('points every watch bullet at something the page shows, by the name the page uses', () => {
    const page = ['index.html', 'app.js'].map((f) => readFileSync(join(ROOT, 'dashboard', 'page', f), 'utf8')).join('\n');
    for (const name of PAGE_NAMES) expect(page, `the page shows "${name}"`).toContain(name);
    for (const l of ALL) for (const b of l.watch) expect(PAGE_NAMES.some((n) => b.includes(n)), `${l.scenario}: ${b}`).toBe(true);
  });

  it('gives every why bullet at least one figure to check', () => {
    for (const l of ALL) for (const b of l.why) expect(quantities(b, true).some(checked), `${l.scenario}: ${b}`).toBe(true);
  });

  it('answers null for no scenario or one without a lesson, and accepts a file or path', () => {
    for (const s of [null, undefined, '', 'no-such-scenario', 'calibrate', 'constructor', 'toString', '__proto__']) expect(lessonFor(s)).toBeNull();
    expect(lessonFor('cache-node-loss')).toBe(LESSONS['cache-node-loss']);
    expect(lessonFor('scenarios/cache-node-loss.ts')?.scenario).toBe('cache-node-loss');
    expect(Object.isFrozen(LESSONS['cache-node-loss']!.why)).toBe(true);
  });
});

describe.skipIf(!HAVE_SOURCES)(`the lessons' numbers and sources (${BRIEF_FILE} and ${SEEDS_DIR})`, () => {
  const brief = HAVE_SOURCES ? readFileSync(BRIEF_FILE, 'utf8') : '';
  const seeds = HAVE_SOURCES ? readdirSync(SEEDS_DIR).map((f) => readFileSync(join(SEEDS_DIR, f), 'utf8')) : [];
  const pool = sourceQuantities([brief, ...seeds].join('\n'));

  it('finds every figure of every why bullet in BRIEF.md or the seeds', () => {
    const missing = ALL.flatMap((l) => l.why.flatMap((b) => unmatched(b, pool).map((q) => `${l.scenario}: "${q}" in: ${b}`)));
    expect(missing).toEqual([]);
  });

  it('names sources that exist: a section of BRIEF.md, or a phrase of a seed', () => {
    for (const l of ALL) {
      for (const s of l.sources) {
        const section = /^BRIEF\.md: (.+)$/.exec(s);
        const seed = /^Seed: [^"“]*["“]([^"”]+)["”]/.exec(s);
        expect(section || seed, `${l.scenario}: a source is "BRIEF.md: <section>" or 'Seed: "<phrase>" …' (got ${s})`).toBeTruthy();
        if (section) expect(brief, `${l.scenario}: ${s}`).toContain(section[1]!);
        if (seed) expect(seeds.some((t) => t.includes(seed[1]!)), `${l.scenario}: ${s}`).toBe(true);
      }
    }
  });
});
