// The pacer that lets a teacher drive a simulation from the dashboard (scenarios/runner/virtual-pacer.ts):
// steps move virtual time by exactly what was asked, pauses hold it, actions land at the current
// virtual time, and a paced run that takes no action writes the same result, byte for byte, as one
// run flat out. The sequences run in a process of their own (test/fixtures/pacer-checks.ts).

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const execFileP = promisify(execFile);

async function observe(which: string): Promise<Record<string, unknown>> {
  const { stdout } = await execFileP(process.execPath, ['test/fixtures/pacer-checks.mjs', which], { timeout: 180_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

describe('VirtualPacer', () => {
  it('paused, steps move virtual time by exactly what was asked; it stays put between steps; actions land at the time it shows', async () => {
    const o = await observe('steps');
    expect(o.atStart).toBe(0);
    expect(o.stateAtStart).toMatchObject({ nowMs: 0, paused: true, done: false, horizonMs: o.horizonMs });
    expect(o.step1s).toBe(1000);
    expect(o.step1min).toBe(61_000);
    expect(o.afterWait).toBe(61_000);
    // Two steps asked together add up.
    expect(o.together).toEqual([63_000, 63_000]);
    expect(o.events).toBeGreaterThan(0);
    expect(o.killAt).toBe(63_000);
    expect(o.lastEvent).toMatchObject({ t: 63_000, kind: 'cache_kill' });
    expect(o.celebrityPost).toMatchObject({ event: { t: 63_000, kind: 'celebrity_post', label: expect.stringMatching(/^@celebrity_1 posts to [\d,]+ followers$/) }, posts: 1 });
    expect((o.celebrityPost as { followers: number }).followers).toBeGreaterThan(0);
    expect(o.leases).toEqual({ event: { t: 63_000, kind: 'cache_leases', label: 'leases on', detail: { enabled: true } }, on: true });
    expect(o.move).toMatchObject({ t: 63_000, kind: 'shard_move', label: 'move of shard 0 db-0 → db-5 started', detail: { shard: 0 } });
    expect(o.moveSame).toMatch(/already on db-0/);
    expect(o.moveAgain).toMatch(/shard 0 is already moving/);
    expect(o.badNode).toMatch(/no cache node "cache-99"/);
    expect(o.badStep).toMatch(/positive/);
    expect(o.badSpeed).toMatch(/speed/);
    // A step past the end stops at the end, and the run finishes.
    expect(o.stepPastEnd).toBe(o.horizonMs);
    expect(o.durationMs).toBe(o.horizonMs);
    expect(o.done).toBe(true);
    expect(o.actAfterEnd).toMatch(/ended/);
    expect(o.resultEvents).toContainEqual([63_000, 'cache_kill']);
    // The move is done once its copy time is over, and the shard has changed servers.
    const done = (o.resultEventsFull as Array<{ t: number; kind: string; detail: Record<string, unknown> }>).find((e) => e.kind === 'shard_move_done')!;
    expect(done.t).toBe(63_000 + ((o.move as { detail: { copyMs: number } }).detail.copyMs));
    const shards = Object.fromEntries(o.shard0On as Array<[string, number]>);
    const [on0, on5] = o.shardsBefore as [number, number];
    expect([shards['db-0'], shards['db-5']]).toEqual([on0 - 1, on5 + 1]);
  }, 200_000);

  it('a paced run with pauses, steps and speed changes but no action writes the same result as one run flat out', async () => {
    const o = await observe('same-result');
    expect(o.bytes).toBeGreaterThan(100_000);
    expect((o.events as number[])[0]).toBe((o.events as number[])[1]);
    expect(o.same).toBe(true);
  }, 200_000);

  it('at a speed, virtual time follows the wall clock, never ahead of it, and the simulator’s top speed is measured', async () => {
    const o = (await observe('pace')) as { wallMs: number; nowMs: number; maxSpeed: number | null; stepFrom: number; stepEnd: number; afterPlay: number; stoppedAt: number; stillAt: number; horizonMs: number; ended: string[] };
    // 100 virtual ms per real ms; a busy machine may leave it behind, never ahead.
    // At least a tenth of the pace (the simulator manages hundreds of times real time at this scale).
    expect(o.nowMs).toBeGreaterThanOrEqual(10 * o.wallMs);
    expect(o.nowMs).toBeLessThanOrEqual(100 * o.wallMs + 100);
    expect(o.maxSpeed).toBeGreaterThan(0);
    // Play pressed during a step: the step's answer is where it was asked to end; then time goes on.
    expect(o.stepFrom).toBe(o.nowMs);
    expect(o.stepEnd).toBe(o.nowMs + 60_000);
    expect(o.afterPlay).toBeGreaterThan(o.stepEnd);
    // Pause pressed during a ten-hour step: the step stops where it got to, and time stays there.
    expect(o.stoppedAt).toBeGreaterThan(o.afterPlay);
    expect(o.stoppedAt).toBeLessThan(o.horizonMs);
    expect(o.stillAt).toBe(o.stoppedAt);
    // Once over, the clock's controls are refused.
    expect(o.ended).toEqual([expect.stringMatching(/ended/), expect.stringMatching(/ended/)]);
  }, 200_000);
});
