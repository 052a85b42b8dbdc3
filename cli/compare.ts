// PLACEHOLDER while `scalegram compare` is being built: replaced by its real implementation.

import { UsageError } from './usage-error.ts';

export async function compareCommand(_argv: string[]): Promise<number> {
  await Promise.resolve();
  throw new UsageError('"compare" is not built yet');
}
