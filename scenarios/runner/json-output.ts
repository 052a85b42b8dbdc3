// k6's JSON output (`k6 run --out json=FILE`): one JSON object per line, a `Metric` line the first
// time a metric has a sample, then a `Point` line per sample, in k6 v0.48's shape
// (../shared/reference/k6-out-json-sample.jsonl), so tools that read k6's output read Scalegram's.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { MetricRegistry } from './k6-metrics.ts';
import type { Tags } from './runtime.ts';

/** Bytes gathered before a write: a run records about eleven samples per request. */
const FLUSH_AT = 1 << 16;

export class JsonOutput {
  private readonly fd: number;
  private buf = '';
  private readonly seen = new Set<string>();
  private closed = false;

  /**
   * Opens FILE (truncating it) and taps the registry. `thresholds` are the script's, by metric or
   * sub-metric selector, as k6 lists them on each Metric line.
   */
  constructor(
    readonly file: string,
    private readonly registry: MetricRegistry,
    private readonly thresholds: Record<string, unknown[]>,
  ) {
    this.fd = openSync(file, 'w');
    registry.tap = (name, value, tags) => this.point(name, value, tags);
  }

  private point(name: string, value: number, tags: Tags): void {
    if (!this.seen.has(name)) {
      this.seen.add(name);
      const info = this.registry.info(name)!;
      const subs = this.registry.submetricsOf(name);
      const thresholds = Object.entries(this.thresholds)
        .filter(([sel]) => sel === name)
        .flatMap(([, list]) => list.map((t) => (typeof t === 'string' ? t : String((t as { threshold?: unknown }).threshold))));
      this.buf += `{"type":"Metric","data":${JSON.stringify({ name, type: info.type, contains: info.kind, thresholds, submetrics: subs.length ? subs : null })},"metric":${JSON.stringify(name)}}\n`;
    }
    this.buf += `{"metric":${JSON.stringify(name)},"type":"Point","data":{"time":"${new Date().toISOString()}","value":${value},"tags":${JSON.stringify(tags)}}}\n`;
    if (this.buf.length >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    if (this.buf.length === 0 || this.closed) return;
    writeSync(this.fd, this.buf);
    this.buf = '';
  }

  /** Writes what is buffered and closes the file; the registry is untapped. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.registry.tap = null;
    closeSync(this.fd);
  }
}
