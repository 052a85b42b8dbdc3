// The geo index (Instagram used Solr): located media and locations go here asynchronously, and
// /v1/media/search and /v1/locations/search read from it. An R*Tree prefilters by box, haversine decides.

import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { ensurePrivateFile, makePrivateDir } from './data-dir.ts';
import { simError } from '../engine/errors.ts';
import { isIdString } from './ids.ts';
import type { Metrics } from '../observability/metrics.ts';

/** Mean Earth radius (m) used by haversine; the spherical model errs by at most ~0.5 %. */
export const EARTH_RADIUS_M = 6_371_000;

/**
 * Widening of every query box (degrees). The box maths is exact on paper but runs in doubles;
 * this keeps a point that lies exactly on the radius from being lost to rounding (about 1 cm).
 */
const BOX_MARGIN_DEG = 1e-7;

const DEG = Math.PI / 180;

/** Great-circle distance in metres between two points in degrees. */
export function haversineM(lat1: number, lng1: number, lat2: number, lng2: number): number {
  const dLat = (lat2 - lat1) * DEG;
  const dLng = (lng2 - lng1) * DEG;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * DEG) * Math.cos(lat2 * DEG) * Math.sin(dLng / 2) ** 2;
  // Rounding can push s a hair past 1 for antipodal points, and asin would return NaN.
  return 2 * EARTH_RADIUS_M * Math.asin(Math.sqrt(Math.min(1, Math.max(0, s))));
}

interface Box {
  minLat: number;
  maxLat: number;
  minLng: number;
  maxLng: number;
}

/**
 * The boxes (one, or two across the antimeridian) that hold every point within `distanceM` of
 * (lat, lng). Longitude spans use the exact bound asin(sin r / cos lat), not r / cos lat, which
 * is too narrow at high latitudes; a circle that covers a pole needs every longitude.
 */
export function boundingBoxes(lat: number, lng: number, distanceM: number): Box[] {
  const r = distanceM / EARTH_RADIUS_M;
  const rDeg = r / DEG + BOX_MARGIN_DEG;
  const minLat = lat - rDeg;
  const maxLat = lat + rDeg;
  if (r >= Math.PI / 2 || minLat <= -90 || maxLat >= 90) {
    return [{ minLat: Math.max(-90, minLat), maxLat: Math.min(90, maxLat), minLng: -180, maxLng: 180 }];
  }
  const dLng = Math.asin(Math.min(1, Math.sin(r) / Math.cos(lat * DEG))) / DEG + BOX_MARGIN_DEG;
  const minLng = lng - dLng;
  const maxLng = lng + dLng;
  if (maxLng - minLng >= 360) return [{ minLat, maxLat, minLng: -180, maxLng: 180 }];
  if (minLng < -180) {
    return [
      { minLat, maxLat, minLng: -180, maxLng },
      { minLat, maxLat, minLng: minLng + 360, maxLng: 180 },
    ];
  }
  if (maxLng > 180) {
    return [
      { minLat, maxLat, minLng, maxLng: 180 },
      { minLat, maxLat, minLng: -180, maxLng: maxLng - 360 },
    ];
  }
  return [{ minLat, maxLat, minLng, maxLng }];
}

// R*Tree coordinates are 32-bit floats, rounded outwards, so the tree only ever over-selects; the
// exact coordinates and time ride along as auxiliary (+) columns for the exact test. Time is a
// third dimension so that a narrow time window prunes the tree too.
const SCHEMA = `
  CREATE VIRTUAL TABLE IF NOT EXISTS media_geo USING rtree(
    id, minLat, maxLat, minLng, maxLng, minMs, maxMs, +lat, +lng, +createdMs
  );
  CREATE VIRTUAL TABLE IF NOT EXISTS location_geo USING rtree(
    id, minLat, maxLat, minLng, maxLng, +lat, +lng
  );
`;

interface Candidate {
  id: bigint;
  lat: number;
  lng: number;
  createdMs: number;
}

export interface MediaSearch {
  lat: number;
  lng: number;
  /** Search radius (m). */
  distanceM: number;
  /** Earliest creation time to include (ms since the unix epoch, inclusive). */
  minMs?: number;
  /** Latest creation time to include (ms since the unix epoch, inclusive). */
  maxMs?: number;
  /** Most ids to return (count). */
  limit: number;
  /**
   * Only ids below this one (exclusive). When given, hits are ordered by id, newest first, so that
   * pages cut at an id join up exactly (creation times and ids can disagree by a resize's duration).
   */
  beforeId?: string;
  /** Only ids above this one (exclusive). */
  afterId?: string;
}

export interface LocationSearch {
  lat: number;
  lng: number;
  /** Search radius (m). */
  distanceM: number;
  /** Most ids to return (count). */
  limit: number;
}

function toId(id: string): bigint {
  if (typeof id !== 'string' || !isIdString(id)) throw simError('SG_ERR_INVALID_PARAM', `not a 64-bit id: ${String(id)}`, { id });
  return BigInt(id);
}

function checkPoint(lat: number, lng: number): void {
  if (!Number.isFinite(lat) || lat < -90 || lat > 90) throw simError('SG_ERR_INVALID_PARAM', `latitude out of range: ${lat}`, { lat });
  if (!Number.isFinite(lng) || lng < -180 || lng > 180) throw simError('SG_ERR_INVALID_PARAM', `longitude out of range: ${lng}`, { lng });
}

function checkSearch(distanceM: number, limit: number): void {
  if (!Number.isFinite(distanceM) || distanceM < 0) throw simError('SG_ERR_INVALID_PARAM', `distance must be a non-negative number of metres: ${distanceM}`, { distanceM });
  if (!Number.isInteger(limit) || limit < 0) throw simError('SG_ERR_INVALID_PARAM', `limit must be a non-negative integer: ${limit}`, { limit });
}

function prepareStatements(db: Database.Database) {
  return {
    deleteMedia: db.prepare('DELETE FROM media_geo WHERE id = ?'),
    insertMedia: db.prepare('INSERT INTO media_geo VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    searchMedia: db
      .prepare(
        `SELECT id, lat, lng, createdMs FROM media_geo
         WHERE maxLat >= ? AND minLat <= ? AND maxLng >= ? AND minLng <= ? AND maxMs >= ? AND minMs <= ?`,
      )
      .safeIntegers(),
    deleteLocation: db.prepare('DELETE FROM location_geo WHERE id = ?'),
    insertLocation: db.prepare('INSERT INTO location_geo VALUES (?, ?, ?, ?, ?, ?, ?)'),
    searchLocations: db
      .prepare(`SELECT id, lat, lng FROM location_geo WHERE maxLat >= ? AND minLat <= ? AND maxLng >= ? AND minLng <= ?`)
      .safeIntegers(),
    countMedia: db.prepare('SELECT count(*) AS n FROM media_geo'),
    countLocations: db.prepare('SELECT count(*) AS n FROM location_geo'),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

export class GeoIndex {
  private readonly db: Database.Database;
  private readonly metrics: Metrics;
  private mediaCount: number;
  private locationCount: number;
  private readonly stmts: Statements;

  constructor(deps: { metrics: Metrics }, options: { path?: string } = {}) {
    this.metrics = deps.metrics;
    const path = options.path ?? ':memory:';
    if (path !== ':memory:') {
      makePrivateDir(dirname(path));
      ensurePrivateFile(path); // SQLite's -wal and -shm files take this file's mode
    }
    this.db = new Database(path);
    if (path !== ':memory:') {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
    }
    this.db.exec(SCHEMA);
    this.stmts = prepareStatements(this.db);
    // Counting an R*Tree scans it, so it is done once here and kept up to date by the writers.
    this.mediaCount = (this.stmts.countMedia.get() as { n: number }).n;
    this.locationCount = (this.stmts.countLocations.get() as { n: number }).n;
  }

  /** Adds or moves a media point; indexing the same id again replaces it. */
  indexMedia(mediaId: string, lat: number, lng: number, createdMs: number): void {
    const id = toId(mediaId);
    checkPoint(lat, lng);
    if (!Number.isFinite(createdMs)) throw simError('SG_ERR_INVALID_PARAM', `createdMs must be a number: ${createdMs}`, { createdMs });
    this.db.transaction(() => {
      const replaced = this.stmts.deleteMedia.run(id).changes;
      this.stmts.insertMedia.run(id, lat, lat, lng, lng, createdMs, createdMs, lat, lng, createdMs);
      if (replaced === 0) this.mediaCount++;
    })();
    this.metrics.inc('geo_ops', { op: 'index' });
  }

  removeMedia(mediaId: string): void {
    const id = toId(mediaId);
    this.mediaCount -= this.stmts.deleteMedia.run(id).changes;
    this.metrics.inc('geo_ops', { op: 'remove' });
  }

  searchMedia(q: MediaSearch): string[] {
    checkPoint(q.lat, q.lng);
    checkSearch(q.distanceM, q.limit);
    const minMs = q.minMs ?? -Number.MAX_VALUE;
    const maxMs = q.maxMs ?? Number.MAX_VALUE;
    // Real elapsed time on purpose: this histogram is the cost of the index itself, which takes
    // the same wall time whether the run's clock is real or virtual.
    const t0 = performance.now();
    const hits: Candidate[] = [];
    const below = q.beforeId !== undefined ? toId(q.beforeId) : null;
    const above = q.afterId !== undefined ? toId(q.afterId) : null;
    if (q.limit > 0 && minMs <= maxMs) {
      for (const b of boundingBoxes(q.lat, q.lng, q.distanceM)) {
        const rows = this.stmts.searchMedia.iterate(b.minLat, b.maxLat, b.minLng, b.maxLng, minMs, maxMs);
        for (const raw of rows) {
          const row = raw as { id: bigint; lat: number; lng: number; createdMs: number | bigint };
          const createdMs = Number(row.createdMs);
          // The tree's float32 boxes over-select in time as well as in space.
          if (createdMs < minMs || createdMs > maxMs) continue;
          if ((below !== null && row.id >= below) || (above !== null && row.id <= above)) continue;
          if (haversineM(q.lat, q.lng, row.lat, row.lng) > q.distanceM) continue;
          hits.push({ id: row.id, lat: row.lat, lng: row.lng, createdMs });
        }
      }
    }
    // Newest first; ids are minted in time order, so the larger id breaks a tie the same way.
    const byId = (a: Candidate, b: Candidate) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
    hits.sort(below !== null ? byId : (a, b) => b.createdMs - a.createdMs || byId(a, b));
    const out = hits.slice(0, q.limit).map((h) => h.id.toString());
    this.metrics.inc('geo_ops', { op: 'search' });
    this.metrics.observe('geo_search_ms', undefined, performance.now() - t0);
    return out;
  }

  /** Adds or moves a location; indexing the same id again replaces it. */
  indexLocation(locationId: string, lat: number, lng: number): void {
    const id = toId(locationId);
    checkPoint(lat, lng);
    this.db.transaction(() => {
      const replaced = this.stmts.deleteLocation.run(id).changes;
      this.stmts.insertLocation.run(id, lat, lat, lng, lng, lat, lng);
      if (replaced === 0) this.locationCount++;
    })();
    this.metrics.inc('geo_ops', { op: 'index' });
  }

  searchLocations(q: LocationSearch): string[] {
    checkPoint(q.lat, q.lng);
    checkSearch(q.distanceM, q.limit);
    const t0 = performance.now();
    const hits: Array<{ id: bigint; distanceM: number }> = [];
    if (q.limit > 0) {
      for (const b of boundingBoxes(q.lat, q.lng, q.distanceM)) {
        for (const raw of this.stmts.searchLocations.iterate(b.minLat, b.maxLat, b.minLng, b.maxLng)) {
          const row = raw as { id: bigint; lat: number; lng: number };
          const distanceM = haversineM(q.lat, q.lng, row.lat, row.lng);
          if (distanceM <= q.distanceM) hits.push({ id: row.id, distanceM });
        }
      }
    }
    hits.sort((a, b) => a.distanceM - b.distanceM || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const out = hits.slice(0, q.limit).map((h) => h.id.toString());
    this.metrics.inc('geo_ops', { op: 'search' });
    this.metrics.observe('geo_search_ms', undefined, performance.now() - t0);
    return out;
  }

  stats(): { media: number; locations: number } {
    return { media: this.mediaCount, locations: this.locationCount };
  }

  close(): void {
    this.db.close();
  }
}
