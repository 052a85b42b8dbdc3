// PLACEHOLDER while `scalegram sweep` is being built: replaced by its real implementation.

import { UsageError } from './usage-error.ts';

export async function sweepCommand(_argv: string[]): Promise<number> {
  await Promise.resolve();
  throw new UsageError('"sweep" is not built yet');
}
