// The topology's own measures as k6 metrics, so thresholds can judge them under Scalegram's runner
// and under real k6 alike. Scalegram's runner samples GET /_sim/scalars into these every second by
// itself; under k6 the `telemetry` scenario below does it (and is a no-op under Scalegram's runner).

import http from 'k6/http';
import { Trend } from 'k6/metrics';

/** Trends (so thresholds can use max, min, p(N) over the run), one sample per second. */
export const TOPOLOGY_METRICS = {
  cache_hit_rate: new Trend('cache_hit_rate'),
  fanout_lag_ms: new Trend('fanout_lag_ms', true),
  shard_skew: new Trend('shard_skew'),
  server_skew: new Trend('server_skew'),
  stale_reads: new Trend('stale_reads'),
  replica_lag_ms: new Trend('replica_lag_ms', true),
  queue_depth: new Trend('queue_depth'),
  db_writes_lost: new Trend('db_writes_lost'),
};

/** A scenario that samples the topology once a second for `duration` (add it to options.scenarios). */
export function telemetryScenario(duration: string) {
  return { executor: 'constant-arrival-rate', rate: 1, timeUnit: '1s', duration, preAllocatedVUs: 1, maxVUs: 2, exec: 'sampleTopology' };
}

/** The exec function of telemetryScenario: export it from the scenario script. */
export async function sampleTopology(): Promise<void> {
  if (__ENV.SCALEGRAM_RUNNER === '1') return; // Scalegram's runner samples by itself
  const res = await http.get(`${(__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '')}/_sim/scalars`, {
    headers: __ENV.ADMIN_TOKEN ? { Authorization: `Bearer ${__ENV.ADMIN_TOKEN}` } : {},
    tags: { name: 'sim_scalars' },
  });
  if (res.status !== 200) return;
  const scalars = res.json() as Record<string, number | null>;
  for (const [name, trend] of Object.entries(TOPOLOGY_METRICS)) {
    const v = scalars[name];
    if (typeof v === 'number' && Number.isFinite(v)) trend.add(v);
  }
}
