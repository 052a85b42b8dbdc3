// Inline SVG plots for the HTML report: line charts (with thresholds as horizontal lines and the
// run's events as labelled vertical lines) and heatmaps, as strings. No library and nothing
// external, so the report opens offline; each plot is an <svg data-plot="…"> whose data also rides
// in a data-tip attribute for the page's hover tooltip.

import { formatSeconds, formatValue, num, type Unit } from '../../scenarios/runner/format.ts';
import type { XY } from '../../scenarios/runner/time-axis.ts';
import type { Marker, ThresholdLine } from './data.ts';
import { esc } from './format.ts';

export type { Unit };

export interface ChartSeries {
  label: string;
  points: XY[];
  color?: string;
  /** SVG stroke-dasharray, e.g. "4 3". */
  dash?: string;
  width?: number;
}

export interface LineChart {
  /** The data-plot name, e.g. "feed-latency". */
  id: string;
  title: string;
  /** One line under the title: what the lines are, honestly. */
  subtitle?: string;
  unit: Unit;
  series: ChartSeries[];
  /** Drawn as horizontal lines; values in the plot's unit (ratios 0–1). */
  thresholds?: ThresholdLine[];
  markers: Marker[];
  /** The time axis (seconds since the scenarios started). */
  x: [number, number];
  log?: boolean;
  yMin?: number;
  yMax?: number;
}

export interface HeatCell {
  x0: number;
  x1: number;
  row: number;
  v: number;
}

export interface Heatmap {
  id: string;
  title: string;
  subtitle?: string;
  unit: Unit;
  /** Row labels, top to bottom. */
  rows: string[];
  cells: HeatCell[];
  markers: Marker[];
  x: [number, number];
}

export const PALETTE = ['#2563eb', '#f97316', '#16a34a', '#db2777', '#7c3aed', '#0891b2', '#ca8a04', '#dc2626', '#4b5563', '#65a30d', '#9333ea', '#0d9488', '#e11d48', '#1d4ed8', '#a16207', '#475569'];

const W = 720;
const PAD = { left: 58, right: 18, top: 8, bottom: 30 };
const MARKER_ROW_PX = 13;

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

function linearTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, count);
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function timeTicks(lo: number, hi: number): number[] {
  const span = hi - lo;
  const steps = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const step = steps.find((s) => span / s <= 8) ?? 3600 * Math.ceil(span / 8 / 3600);
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

interface Frame {
  x: (v: number) => number;
  plotTop: number;
  plotBottom: number;
  left: number;
  right: number;
  height: number;
  markerRows: number;
}

/**
 * Marker label rows: a label moves down a row while it would overlap another on its row (up to four
 * rows), and a label that would run off the right edge is drawn to the left of its line instead.
 */
function layoutMarkers(markers: Marker[], x: (v: number) => number, right: number): LaidMarker[] {
  const rowsEnd: number[] = [];
  return markers.map((m) => {
    const px = Math.min(x(m.x), right);
    const w = Math.min(short(m.label).length, 34) * 5.6 + 8;
    const flip = px + w > W - 2;
    const start = flip ? px - w : px;
    const end = flip ? px : px + w;
    let row = rowsEnd.findIndex((e) => e < start);
    if (row < 0) row = rowsEnd.length < 4 ? rowsEnd.length : rowsEnd.indexOf(Math.min(...rowsEnd));
    rowsEnd[row] = end;
    return { ...m, px, row, flip };
  });
}

type LaidMarker = Marker & { px: number; row: number; flip: boolean };

function short(label: string): string {
  return label.length > 34 ? label.slice(0, 33) + '…' : label;
}

function frame(xDomain: [number, number], markers: Marker[], plotHeight: number): Frame & { laid: LaidMarker[] } {
  const [x0, x1] = xDomain[1] > xDomain[0] ? xDomain : [xDomain[0], xDomain[0] + 1];
  const left = PAD.left;
  const right = W - PAD.right;
  const x = (v: number) => left + ((v - x0) / (x1 - x0)) * (right - left);
  const inRange = markers.filter((m) => m.x >= x0 && m.x <= x1);
  const laid = layoutMarkers(inRange, x, right);
  const markerRows = laid.length ? Math.max(...laid.map((m) => m.row)) + 1 : 0;
  const plotTop = PAD.top + markerRows * MARKER_ROW_PX + (markerRows ? 4 : 0);
  const plotBottom = plotTop + plotHeight;
  return { x, plotTop, plotBottom, left, right, height: plotBottom + PAD.bottom, markerRows, laid };
}

function timeAxis(f: Frame, xDomain: [number, number], grid = true): string {
  const ticks = timeTicks(xDomain[0], xDomain[1]);
  const parts = ticks.map((t) => {
    const px = f.x(t).toFixed(1);
    const line = grid ? `<line class="grid" x1="${px}" x2="${px}" y1="${f.plotTop}" y2="${f.plotBottom}"/>` : `<line class="axis" x1="${px}" x2="${px}" y1="${f.plotBottom}" y2="${f.plotBottom + 4}"/>`;
    return `${line}<text class="tick" x="${px}" y="${f.plotBottom + 15}" text-anchor="middle">${formatSeconds(t)}</text>`;
  });
  return parts.join('') + `<line class="axis" x1="${f.left}" x2="${f.right}" y1="${f.plotBottom}" y2="${f.plotBottom}"/>`;
}

function markerMarks(f: Frame & { laid: LaidMarker[] }): string {
  return f.laid
    .map((m) => {
      const px = m.px.toFixed(1);
      const ly = PAD.top + m.row * MARKER_ROW_PX + 9;
      return `<g class="marker ${m.kind}"><title>${esc(`${formatSeconds(m.x)}: ${m.label}`)}</title><line x1="${px}" x2="${px}" y1="${ly - 8}" y2="${f.plotBottom}"/><text x="${(m.flip ? m.px - 3 : m.px + 3).toFixed(1)}" y="${ly}"${m.flip ? ' text-anchor="end"' : ''}>${esc(short(m.label))}</text></g>`;
    })
    .join('');
}

function svgOpen(id: string, height: number, tip: object | null, extraClass = ''): string {
  const tipAttr = tip ? ` data-tip="${esc(JSON.stringify(tip))}"` : '';
  return `<svg class="plot${extraClass}" data-plot="${esc(id)}" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="${esc(id)}" xmlns="http://www.w3.org/2000/svg"${tipAttr}>`;
}

function legend(items: Array<{ label: string; color: string; dash?: string }>): string {
  if (items.length < 2) return '';
  return `<div class="legend">${items.map((i) => `<span><i style="background:${i.color}${i.dash ? ';opacity:.6' : ''}"></i>${esc(i.label)}</span>`).join('')}</div>`;
}

function figure(id: string, title: string, subtitle: string | undefined, body: string, after = ''): string {
  return `<figure class="chart" id="plot-${esc(id)}"><figcaption><b>${esc(title)}</b>${subtitle ? `<span>${esc(subtitle)}</span>` : ''}</figcaption>${body}${after}</figure>`;
}

/** A panel in place of a plot: the run has nothing to draw there. */
export function noData(id: string, title: string, why: string): string {
  return `<figure class="chart empty" data-empty-plot="${esc(id)}"><figcaption><b>${esc(title)}</b></figcaption><div class="no-data">No data in this run — ${esc(why)}</div></figure>`;
}

const round = (v: number) => Math.round(v * 100) / 100;

/**
 * Splits a series where points are missing (a dead cache node has no lookups, so no ratio): a gap
 * wider than 1.5 times the usual spacing (one step missing) breaks the line instead of drawing across it.
 */
function segments(points: XY[]): XY[][] {
  if (points.length < 3) return [points];
  const gaps = points.slice(1).map((p, i) => p[0] - points[i]![0]).sort((a, b) => a - b);
  const usual = gaps[Math.floor(gaps.length / 2)]!;
  const out: XY[][] = [[points[0]!]];
  for (let i = 1; i < points.length; i++) {
    if (points[i]![0] - points[i - 1]![0] > 1.5 * usual) out.push([]);
    out[out.length - 1]!.push(points[i]!);
  }
  return out;
}

/** A line chart, or the "no data" panel when no series has a point. */
export function lineChart(c: LineChart, emptyWhy = 'nothing was recorded for it'): string {
  const series = c.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length]!, points: s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])) })).filter((s) => s.points.length > 0);
  if (series.length === 0) return noData(c.id, c.title, emptyWhy);
  const f = frame(c.x, c.markers, 170);
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  let dataMax = Math.max(...ys);
  let dataMin = Math.min(...ys);
  const thresholds = c.thresholds ?? [];
  const offScale: ThresholdLine[] = [];
  let yLo: number;
  let yHi: number;
  let y: (v: number) => number;
  let yTicks: number[];
  if (c.log) {
    const positive = ys.filter((v) => v > 0);
    const floor = positive.length ? Math.min(...positive) : 1;
    dataMin = floor;
    for (const t of thresholds) {
      if (!(t.value > 0)) continue;
      dataMax = Math.max(dataMax, t.value);
      dataMin = Math.min(dataMin, t.value);
    }
    yLo = 10 ** Math.floor(Math.log10(dataMin));
    yHi = 10 ** Math.ceil(Math.log10(Math.max(dataMax, yLo * 10)));
    const l0 = Math.log10(yLo);
    const l1 = Math.log10(yHi);
    y = (v: number) => f.plotBottom - ((Math.log10(Math.max(v, yLo)) - l0) / (l1 - l0)) * (f.plotBottom - f.plotTop);
    yTicks = [];
    for (let e = l0; e <= l1; e++) {
      yTicks.push(10 ** e);
      if (l1 - l0 <= 2 && e < l1) yTicks.push(2 * 10 ** e, 5 * 10 ** e);
    }
  } else {
    yLo = c.yMin ?? Math.min(0, dataMin);
    let hi = c.yMax ?? dataMax;
    for (const t of thresholds) {
      // A threshold far above the data would flatten it: it is listed above the plot instead.
      if (c.yMax === undefined && t.value > hi && (dataMax <= 0 || t.value <= dataMax * 4)) hi = t.value;
      else if (t.value > hi || t.value < yLo) offScale.push(t);
    }
    if (!(hi > yLo)) hi = yLo + (c.unit === 'ratio' ? 1 : 1);
    yTicks = linearTicks(yLo, hi * (c.yMax === undefined ? 1.05 : 1), 5);
    yHi = Math.max(hi, yTicks[yTicks.length - 1]!);
    y = (v: number) => f.plotBottom - ((v - yLo) / (yHi - yLo)) * (f.plotBottom - f.plotTop);
  }
  const tip = { u: c.unit, x0: f.left, x1: f.right, d0: c.x[0], d1: c.x[1] > c.x[0] ? c.x[1] : c.x[0] + 1, s: series.map((s) => ({ l: s.label, c: s.color, p: s.points.map(([a, b]) => [round(a), Number(b.toPrecision(4))]) })) };
  const parts: string[] = [svgOpen(c.id, f.height, tip)];
  parts.push(`<rect class="bg" x="${f.left}" y="${f.plotTop}" width="${f.right - f.left}" height="${f.plotBottom - f.plotTop}"/>`);
  if (c.x[0] < 0) {
    const z = f.x(Math.min(0, c.x[1]));
    parts.push(`<rect class="setup" x="${f.left}" y="${f.plotTop}" width="${(z - f.left).toFixed(1)}" height="${f.plotBottom - f.plotTop}"><title>setup (before the scenarios started)</title></rect>`);
  }
  for (const t of yTicks) {
    const py = y(t).toFixed(1);
    parts.push(`<line class="grid" x1="${f.left}" x2="${f.right}" y1="${py}" y2="${py}"/><text class="tick" x="${f.left - 6}" y="${(Number(py) + 3.5).toFixed(1)}" text-anchor="end">${esc(formatValue(t, c.unit))}</text>`);
  }
  parts.push(timeAxis(f, c.x));
  parts.push(`<line class="axis" x1="${f.left}" x2="${f.left}" y1="${f.plotTop}" y2="${f.plotBottom}"/>`);
  parts.push(markerMarks(f));
  for (const s of series) {
    const attrs = `stroke="${s.color}" stroke-width="${s.width ?? 1.8}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}`;
    for (const seg of segments(s.points)) {
      const pts = seg.map(([px, py]) => `${f.x(px).toFixed(1)},${y(py).toFixed(1)}`);
      if (pts.length === 1) {
        const [cx, cy] = pts[0]!.split(',');
        parts.push(`<circle class="mark" data-series="${esc(s.label)}" cx="${cx}" cy="${cy}" r="3" fill="${s.color}"/>`);
      } else {
        parts.push(`<polyline class="mark line" data-series="${esc(s.label)}" fill="none" ${attrs} points="${pts.join(' ')}"/>`);
        if (s.points.length <= 24) for (const p of pts) parts.push(`<circle class="dot" cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2" fill="${s.color}"/>`);
      }
    }
  }
  for (const t of thresholds) {
    if (offScale.includes(t)) continue;
    const py = y(t.value).toFixed(1);
    const label = `${t.metric} ${t.expression} ${t.ok ? '✓' : '✗'}`;
    // The label sits above its line, or below it when the line runs along the top of the plot.
    const ly = Number(py) - f.plotTop < 14 ? Number(py) + 12 : Number(py) - 4;
    parts.push(`<g class="threshold ${t.ok ? 'ok' : 'failed'}"><title>${esc(`threshold ${label} — observed ${t.observed === null ? 'no samples' : num(t.observed)}`)}</title><line x1="${f.left}" x2="${f.right}" y1="${py}" y2="${py}"/><text x="${f.right - 4}" y="${ly.toFixed(1)}" text-anchor="end">${esc(label)}</text></g>`);
  }
  parts.push(`<line class="guide" x1="0" x2="0" y1="${f.plotTop}" y2="${f.plotBottom}" visibility="hidden"/></svg>`);
  const svg = parts.join('');
  const notes = offScale.length ? `<div class="offscale">${offScale.map((t) => `<span class="${t.ok ? 'ok' : 'failed'}">${t.ok ? '✓' : '✗'} ${esc(t.metric)} ${esc(t.expression)} — off the scale of this plot (observed ${t.observed === null ? 'no samples' : esc(formatValue(t.observed, c.unit))})</span>`).join('')}</div>` : '';
  return figure(c.id, c.title, c.subtitle, svg, legend(series) + notes);
}

/** Colour of a heat value in [0, 1]: pale to dark red through orange. */
function heatColor(f: number): string {
  const stops: Array<[number, [number, number, number]]> = [
    [0, [247, 248, 250]],
    [0.15, [254, 240, 180]],
    [0.4, [253, 174, 97]],
    [0.7, [227, 74, 51]],
    [1, [127, 0, 40]],
  ];
  const v = Math.max(0, Math.min(1, f));
  let i = 0;
  while (i < stops.length - 2 && v > stops[i + 1]![0]) i++;
  const [a, ca] = stops[i]!;
  const [b, cb] = stops[i + 1]!;
  const k = (v - a) / (b - a || 1);
  const c = ca.map((x, j) => Math.round(x + (cb[j]! - x) * k));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** A heatmap of values per row over time, or the "no data" panel. */
export function heatmap(h: Heatmap, emptyWhy = 'nothing was recorded for it'): string {
  const cells = h.cells.filter((c) => Number.isFinite(c.v));
  if (cells.length === 0 || h.rows.length === 0) return noData(h.id, h.title, emptyWhy);
  const rowPx = Math.max(3, Math.min(40, Math.floor(200 / h.rows.length)));
  const f = frame(h.x, h.markers, rowPx * h.rows.length);
  const max = Math.max(...cells.map((c) => c.v), 0);
  const parts: string[] = [svgOpen(h.id, f.height + 22, null, ' heat')];
  parts.push(`<rect class="bg" x="${f.left}" y="${f.plotTop}" width="${f.right - f.left}" height="${f.plotBottom - f.plotTop}"/>`);
  for (const c of cells) {
    const x0 = f.x(c.x0);
    const x1 = f.x(c.x1);
    const y0 = f.plotTop + c.row * rowPx;
    parts.push(`<rect class="mark cell" x="${x0.toFixed(1)}" y="${y0}" width="${Math.max(0.6, x1 - x0).toFixed(1)}" height="${rowPx}" fill="${heatColor(max > 0 ? Math.sqrt(c.v / max) : 0)}"><title>${esc(`${h.rows[c.row]} at ${formatSeconds(c.x0)}–${formatSeconds(c.x1)}: ${formatValue(c.v, h.unit)}`)}</title></rect>`);
  }
  const labelEvery = Math.max(1, Math.ceil((h.rows.length * 11) / (rowPx * h.rows.length)));
  h.rows.forEach((label, i) => {
    if (i % labelEvery !== 0) return;
    parts.push(`<text class="tick" x="${f.left - 6}" y="${(f.plotTop + i * rowPx + rowPx / 2 + 3.5).toFixed(1)}" text-anchor="end">${esc(label)}</text>`);
  });
  parts.push(timeAxis(f, h.x, false));
  parts.push(markerMarks(f));
  // The colour scale, bottom right: 0 … the largest cell, square-root (so a moderate band still shows beside a burst).
  const ly = f.height + 4;
  const steps = 24;
  const maxText = formatValue(max, h.unit);
  const barRight = f.right - maxText.length * 6 - 6;
  for (let i = 0; i < steps; i++) parts.push(`<rect x="${(barRight - (steps - i) * 6).toFixed(1)}" y="${ly}" width="6.1" height="9" fill="${heatColor(i / (steps - 1))}"/>`);
  parts.push(`<text class="tick" x="${barRight - steps * 6 - 5}" y="${ly + 8}" text-anchor="end">0 (√ scale)</text><text class="tick" x="${f.right}" y="${ly + 8}" text-anchor="end">${esc(maxText)}</text>`);
  parts.push('</svg>');
  return figure(h.id, h.title, h.subtitle, parts.join(''));
}
