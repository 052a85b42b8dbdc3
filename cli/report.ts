// `scalegram report <DIR | result.json>`: regenerates a run's reports (report.md, report.html, junit.xml, summary.json) from
// its result.json into the same directory and prints the paths written. Bad input exits 2.

import { writeReports } from '../reports/index.ts';
import { ResultInputError } from '../reports/load-result.ts';
import { parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram report <result-dir | result.json>

Regenerates the reports of a run from its result.json, into the directory that holds it:
  report.md     verdict, findings, thresholds, HTTP per route and each area, for a pull-request comment
  report.html   one self-contained page (opens offline) with plots over time, thresholds and events
  junit.xml     one test case per threshold, for CI systems
  summary.json  k6's --summary-export shape, rebuilt from result.json (identical to the run's own)

scalegram run writes them after every run; use this after changing a report or on an older result.
Example: scalegram report reports/out/latest

Exit codes: 0 written, 2 no result.json there, not a Scalegram result, or a damaged one (nothing is written).
`;

export async function reportCommand(argv: string[]): Promise<number> {
  await Promise.resolve();
  const { values, positionals } = parse(argv, {}, true);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('give exactly one result directory or result.json (see --help)');
  let written: string[];
  try {
    written = writeReports(positionals[0]!);
  } catch (e) {
    if (e instanceof ResultInputError) throw new UsageError(e.message);
    // The document passed its shape checks but something inside could not be read (a corrupt
    // encoded histogram, say): say so, write nothing (every report is rendered before any is written).
    throw new UsageError(`${positionals[0]!}: the result could not be rendered (${(e as Error).message}); it may be damaged — rerun the scenario or restore the file`);
  }
  for (const p of written) process.stdout.write(`${p}\n`);
  return EXIT.OK;
}
