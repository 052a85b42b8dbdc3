// Number and time formatting shared by the end-of-run summary and the Markdown and HTML reports, so
// a figure reads the same in all three: significant digits rather than fixed decimals, units last.

export type Unit = 'ms' | 'ratio' | 'per_s' | 'count';

/** A number with at most `digits` significant figures, no trailing zeros, thousands separated. */
export function num(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10 ** digits) return Math.round(v).toLocaleString('en-US');
  const p = Number(v.toPrecision(digits));
  return p.toLocaleString('en-US', { maximumFractionDigits: 6 });
}

export function formatValue(v: number, unit: Unit): string {
  switch (unit) {
    case 'ms':
      return Math.abs(v) >= 1000 ? `${num(v / 1000)} s` : `${num(v)} ms`;
    case 'ratio':
      return `${num(100 * v)}%`;
    case 'per_s':
      return Math.abs(v) >= 10_000 ? `${num(v / 1000)}k/s` : `${num(v)}/s`;
    case 'count':
      return Math.abs(v) >= 1e6 ? `${num(v / 1e6)}M` : Math.abs(v) >= 10_000 ? `${num(v / 1000)}k` : num(v);
  }
}

/** Seconds on the time axis: 45s, 2m, 2m30s, 1h05m. */
export function formatSeconds(s: number): string {
  const sign = s < 0 ? '−' : '';
  let a = Math.abs(s);
  if (a < 60) return `${sign}${num(a, 3)}s`;
  a = Math.round(a);
  const h = Math.floor(a / 3600);
  const m = Math.floor((a % 3600) / 60);
  const sec = a % 60;
  if (h > 0) return `${sign}${h}h${String(m).padStart(2, '0')}m`;
  return `${sign}${m}m${sec ? String(sec).padStart(2, '0') + 's' : ''}`;
}
