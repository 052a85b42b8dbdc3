// The geo index against points at known distances: exact radius edges, time windows, ordering,
// the antimeridian and the poles, replacement and removal, and a file-backed index reopened.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../sim/engine/clock.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { EARTH_RADIUS_M, GeoIndex, haversineM } from '../sim/parts/geo-index.ts';
import { Metrics } from '../sim/observability/metrics.ts';

const DEG = Math.PI / 180;
/** Degrees of latitude that span `m` metres. */
const northDeg = (m: number) => m / EARTH_RADIUS_M / DEG;
/** Degrees of longitude that span `m` metres along the parallel at `lat` (close to the great circle for short hops). */
const eastDeg = (m: number, lat: number) => m / (EARTH_RADIUS_M * Math.cos(lat * DEG)) / DEG;

const T0 = 1_350_000_000_000;
/** Ids above 2^53, so any trip through a double would corrupt them. */
const id = (n: number) => (9_007_199_254_740_993n + BigInt(n)).toString();

const open: GeoIndex[] = [];
const dirs: string[] = [];
function makeIndex(path?: string) {
  const metrics = new Metrics(new VirtualClock());
  const index = new GeoIndex({ metrics }, path ? { path } : {});
  open.push(index);
  return { index, metrics };
}
afterEach(() => {
  for (const index of open.splice(0)) {
    try {
      index.close();
    } catch {
      // already closed by the test
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isSimError(err) ? err.code : 'not a SimError';
  }
  return undefined;
}

describe('haversineM', () => {
  it('puts London 343.5 km from Paris', () => {
    const m = haversineM(51.5074, -0.1278, 48.8566, 2.3522);
    expect(Math.abs(m - 343_500)).toBeLessThan(1000);
  });

  it('measures one degree of the equator as 111.19 km and the antipode as half the circumference', () => {
    expect(haversineM(0, 0, 0, 1)).toBeCloseTo(111_194.9, 0);
    expect(haversineM(0, 179.5, 0, -179.5)).toBeCloseTo(111_194.9, 0);
    expect(haversineM(10, 20, -10, -160)).toBeCloseTo(Math.PI * EARTH_RADIUS_M, 0);
  });
});

describe('GeoIndex media search', () => {
  it('includes a point 900 m away and excludes one 1100 m away for a 1000 m radius', () => {
    const { index } = makeIndex();
    index.indexMedia(id(1), 40.7128 + northDeg(900), -74.006, T0);
    index.indexMedia(id(2), 40.7128 + northDeg(1100), -74.006, T0);
    index.indexMedia(id(3), 40.7128 - northDeg(999), -74.006, T0);
    expect(index.searchMedia({ lat: 40.7128, lng: -74.006, distanceM: 1000, limit: 10 }).sort()).toEqual([id(1), id(3)].sort());
  });

  it('widens the longitude box at 60° north, where a degree of longitude is half as long', () => {
    const { index } = makeIndex();
    index.indexMedia(id(1), 60, 10 + eastDeg(950, 60), T0);
    index.indexMedia(id(2), 60, 10 - eastDeg(950, 60), T0);
    index.indexMedia(id(3), 60, 10 + eastDeg(1100, 60), T0);
    // A degree-for-degree box (0.009° of longitude) would miss both 950 m points (0.0171° away).
    expect(index.searchMedia({ lat: 60, lng: 10, distanceM: 1000, limit: 10 }).sort()).toEqual([id(1), id(2)].sort());
  });

  it('filters by creation time, inclusive at both ends', () => {
    const { index } = makeIndex();
    for (let i = 0; i < 10; i++) index.indexMedia(id(i), 35.68, 139.76, T0 + i * 60_000);
    const got = index.searchMedia({ lat: 35.68, lng: 139.76, distanceM: 100, minMs: T0 + 3 * 60_000, maxMs: T0 + 6 * 60_000, limit: 50 });
    expect(got).toEqual([id(6), id(5), id(4), id(3)]);
    // Windows narrower than the R*Tree's float32 resolution (~2 minutes at this epoch) still cut exactly.
    expect(index.searchMedia({ lat: 35.68, lng: 139.76, distanceM: 100, minMs: T0 + 60_001, maxMs: T0 + 120_000, limit: 50 })).toEqual([id(2)]);
    expect(index.searchMedia({ lat: 35.68, lng: 139.76, distanceM: 100, minMs: T0 + 9 * 60_000 + 1, limit: 50 })).toEqual([]);
  });

  it('returns newest first and at most limit ids', () => {
    const { index } = makeIndex();
    const order = [5, 2, 9, 0, 7, 1, 8, 3, 6, 4];
    for (const i of order) index.indexMedia(id(i), -33.8688 + northDeg(i * 10), 151.2093, T0 + i * 1000);
    expect(index.searchMedia({ lat: -33.8688, lng: 151.2093, distanceM: 500, limit: 3 })).toEqual([id(9), id(8), id(7)]);
    expect(index.searchMedia({ lat: -33.8688, lng: 151.2093, distanceM: 500, limit: 100 })).toHaveLength(10);
    expect(index.searchMedia({ lat: -33.8688, lng: 151.2093, distanceM: 500, limit: 0 })).toEqual([]);
  });

  it('finds a point at lng 179.999 from lng -179.999 across the antimeridian, and not a point at lng 0', () => {
    const { index } = makeIndex();
    index.indexMedia(id(1), 0, 179.999, T0);
    index.indexMedia(id(2), 0, -179.9995, T0 + 1);
    index.indexMedia(id(3), 0, 0, T0 + 2);
    expect(index.searchMedia({ lat: 0, lng: -179.999, distanceM: 1000, limit: 10 })).toEqual([id(2), id(1)]);
    expect(index.searchMedia({ lat: 0, lng: 179.9999, distanceM: 1000, limit: 10 })).toEqual([id(2), id(1)]);
  });

  it('finds a point across the North Pole, where every longitude is in range', () => {
    const { index } = makeIndex();
    index.indexMedia(id(1), 89.995, 180, T0); // 0.001° + 0.005° over the pole ≈ 667 m
    index.indexMedia(id(2), 89.98, 180, T0); // ≈ 2.3 km
    expect(haversineM(89.999, 0, 89.995, 180)).toBeCloseTo(667.2, 0);
    expect(index.searchMedia({ lat: 89.999, lng: 0, distanceM: 1000, limit: 10 })).toEqual([id(1)]);
    expect(index.searchMedia({ lat: 89.999, lng: 0, distanceM: 3000, limit: 10 }).sort()).toEqual([id(1), id(2)].sort());
  });

  it('re-indexing an id moves it instead of adding a second point', () => {
    const { index } = makeIndex();
    index.indexMedia(id(1), 48.8566, 2.3522, T0);
    index.indexMedia(id(1), 51.5074, -0.1278, T0);
    expect(index.stats().media).toBe(1);
    expect(index.searchMedia({ lat: 48.8566, lng: 2.3522, distanceM: 1000, limit: 10 })).toEqual([]);
    expect(index.searchMedia({ lat: 51.5074, lng: -0.1278, distanceM: 1000, limit: 10 })).toEqual([id(1)]);
  });

  it('removes media, and removing an unknown id changes nothing', () => {
    const { index } = makeIndex();
    index.indexMedia(id(1), 1, 1, T0);
    index.indexMedia(id(2), 1, 1, T0);
    index.removeMedia(id(1));
    index.removeMedia(id(99));
    expect(index.stats()).toEqual({ media: 1, locations: 0 });
    expect(index.searchMedia({ lat: 1, lng: 1, distanceM: 10, limit: 10 })).toEqual([id(2)]);
  });

  it('returns 64-bit ids exactly, including the largest signed one', () => {
    const { index } = makeIndex();
    const max = (2n ** 63n - 1n).toString();
    index.indexMedia(max, 0, 0, T0);
    index.indexMedia('1234567890123456789', 0, 0, T0 - 1);
    expect(index.searchMedia({ lat: 0, lng: 0, distanceM: 1, limit: 10 })).toEqual([max, '1234567890123456789']);
  });

  it('refuses bad ids, coordinates, radii and limits with SG_ERR_INVALID_PARAM', () => {
    const { index } = makeIndex();
    expect(codeOf(() => index.indexMedia('12a', 0, 0, T0))).toBe('SG_ERR_INVALID_PARAM');
    expect(codeOf(() => index.indexMedia((2n ** 63n).toString(), 0, 0, T0))).toBe('SG_ERR_INVALID_PARAM');
    expect(codeOf(() => index.indexMedia(id(1), 90.5, 0, T0))).toBe('SG_ERR_INVALID_PARAM');
    expect(codeOf(() => index.indexMedia(id(1), 0, -180.01, T0))).toBe('SG_ERR_INVALID_PARAM');
    expect(codeOf(() => index.indexMedia(id(1), Number.NaN, 0, T0))).toBe('SG_ERR_INVALID_PARAM');
    expect(codeOf(() => index.searchMedia({ lat: 0, lng: 0, distanceM: -1, limit: 1 }))).toBe('SG_ERR_INVALID_PARAM');
    expect(codeOf(() => index.searchMedia({ lat: 0, lng: 0, distanceM: 10, limit: 1.5 }))).toBe('SG_ERR_INVALID_PARAM');
    expect(index.stats().media).toBe(0);
  });

  it('counts index, remove and search operations and times searches', () => {
    const { index, metrics } = makeIndex();
    index.indexMedia(id(1), 0, 0, T0);
    index.indexLocation(id(2), 0, 0);
    index.removeMedia(id(1));
    index.searchMedia({ lat: 0, lng: 0, distanceM: 10, limit: 1 });
    index.searchLocations({ lat: 0, lng: 0, distanceM: 10, limit: 1 });
    expect(metrics.value('geo_ops', { op: 'index' })).toBe(2);
    expect(metrics.value('geo_ops', { op: 'remove' })).toBe(1);
    expect(metrics.value('geo_ops', { op: 'search' })).toBe(2);
    expect(metrics.histogramCount('geo_search_ms')).toBe(2);
  });
});

describe('GeoIndex location search', () => {
  it('returns locations within the radius, nearest first, at most limit', () => {
    const { index } = makeIndex();
    const dists = [400, 100, 1500, 250, 900];
    dists.forEach((m, i) => index.indexLocation(id(i), 37.7749 + northDeg(m), -122.4194));
    expect(index.searchLocations({ lat: 37.7749, lng: -122.4194, distanceM: 1000, limit: 10 })).toEqual([id(1), id(3), id(0), id(4)]);
    expect(index.searchLocations({ lat: 37.7749, lng: -122.4194, distanceM: 1000, limit: 2 })).toEqual([id(1), id(3)]);
    expect(index.stats().locations).toBe(5);
  });
});

describe('GeoIndex on a file', () => {
  it('keeps media and locations, and their counts, across a reopen', () => {
    const dir = mkdtempSync(join(tmpdir(), 'geo-'));
    dirs.push(dir);
    const path = join(dir, 'nested', 'geo.sqlite');
    const first = makeIndex(path).index;
    first.indexMedia(id(1), 52.52, 13.405, T0);
    first.indexMedia(id(2), 52.52, 13.405, T0 + 5);
    first.indexLocation(id(3), 52.52, 13.405);
    first.close();

    const second = makeIndex(path).index;
    expect(second.stats()).toEqual({ media: 2, locations: 1 });
    expect(second.searchMedia({ lat: 52.52, lng: 13.405, distanceM: 50, limit: 10 })).toEqual([id(2), id(1)]);
    expect(second.searchLocations({ lat: 52.52, lng: 13.405, distanceM: 50, limit: 10 })).toEqual([id(3)]);
  });
});
