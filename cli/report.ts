// PLACEHOLDER while `scalegram report` is being built: replaced by its real implementation.

import { UsageError } from './usage-error.ts';

export async function reportCommand(_argv: string[]): Promise<number> {
  await Promise.resolve();
  throw new UsageError('"report" is not built yet');
}
