// The reports a run leaves in its result directory, each a pure function of result.json, and the
// one function that writes them (used by `scalegram run` after the results and by `scalegram report`).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadResult, type ResultDocument } from './load-result.ts';
import { junitXml } from './junit.ts';
import { summaryFromResult } from './summary-from-result.ts';
import { reportHtml } from './report-html.ts';
import { reportMarkdown } from './report-md.ts';

export { keyFigures } from '../scenarios/runner/key-figures.ts';
export { findings } from './findings.ts';
export { checkResult, loadResult, ResultInputError, type ResultDocument } from './load-result.ts';
export { reportHtml } from './report-html.ts';
export { reportMarkdown } from './report-md.ts';

/** Every report file: its name in the result directory and how it is made. Add a report here. */
export const REPORTS: ReadonlyArray<{ file: string; render: (r: ResultDocument) => string }> = [
  { file: 'report.md', render: reportMarkdown },
  { file: 'report.html', render: reportHtml },
  { file: 'junit.xml', render: junitXml },
  // The k6 summary export, rebuilt from result.json (byte-identical to what the run wrote).
  { file: 'summary.json', render: (r) => JSON.stringify(summaryFromResult(r), null, 2) },
];

/**
 * Regenerates every report from DIR/result.json (or a result.json path) into the directory that
 * holds it, and returns the paths written. Throws ResultInputError when the input is not a result.
 */
export function writeReports(input: string): string[] {
  const { dir, result } = loadResult(input);
  // Render all before writing any, so a failure leaves no half-updated set.
  const rendered = REPORTS.map((rep) => ({ path: join(dir, rep.file), text: rep.render(result) }));
  for (const { path, text } of rendered) writeFileSync(path, text);
  return rendered.map((x) => x.path);
}
