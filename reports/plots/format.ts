// Escaping for the HTML report. Numbers, ratios and times are formatted by
// scenarios/runner/format.ts, shared with the end-of-run summary so a figure reads the same everywhere.

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}
