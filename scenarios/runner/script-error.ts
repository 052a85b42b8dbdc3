// How a script's load error is shown: its message, then the stack frames in the user's own files.

import { dirname, resolve } from 'node:path';

/**
 * A script's load error as k6 shows one: the error's message, then only the stack frames in the
 * user's files (the script and what it imports from beside it), not the runner's or Node's.
 */
export function scriptErrorText(e: unknown, scriptPath: string): string {
  if (!(e instanceof Error)) return String(e);
  const head = `${e.name}: ${e.message}`;
  const dir = dirname(resolve(scriptPath));
  const frames = (e.stack ?? '')
    .split('\n')
    .slice(1)
    .filter((l) => /^\s+at /.test(l) && l.includes(dir) && !l.includes('node_modules') && !/[/\\]scenarios[/\\]runner[/\\]/.test(l));
  return [head, ...frames].join('\n');
}

/** The first stack frame in the user's own files (as scriptErrorText keeps them), as `file:line:column`, or null. */
export function userFrame(stack: string, scriptPath: string): string | null {
  const dir = dirname(resolve(scriptPath));
  for (const l of stack.split('\n').slice(1)) {
    if (!/^\s+at /.test(l) || !l.includes(dir) || l.includes('node_modules') || /[/\\]scenarios[/\\]runner[/\\]/.test(l)) continue;
    const m = /\(?([^\s()]+:\d+:\d+)\)?\s*$/.exec(l);
    if (m) return m[1]!;
  }
  return null;
}
