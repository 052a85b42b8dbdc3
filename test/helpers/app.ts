// Test harness for the HTTP server: a small seeded topology, the app on top (driven through
// app.inject(), no socket), and helpers to sign up, upload generated photos and follow.

import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import sharp from 'sharp';
import { buildApp } from '../../server/app.ts';
import type { ConnectionLimits } from '../../server/connection-guard.ts';
import type { Clock } from '../../sim/engine/clock.ts';
import { buildTopology, type BuildOptions, type Topology } from '../../sim/topology.ts';
import { loadTopology, type TopologyInput } from '../../sim/topology-config.ts';

export interface TestEnv {
  topology: Topology;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** The admin token of every test app (a fixed one: tests are not secrets). */
export const ADMIN_TOKEN = 'test-admin-token-0123456789';
/** Headers that open the admin API (/_sim/*) of a test app. */
export const ADMIN_HEADERS = Object.freeze({ authorization: `Bearer ${ADMIN_TOKEN}` });

export interface EnvOptions {
  /** Default 0 (unlimited) unless the test is about limits. */
  rateLimitPerHour?: number;
  publicUrl?: string;
  topology?: TopologyInput;
  seed?: number;
  clock?: Clock;
  /** Timeouts and the per-address cap, for tests that listen on a real port. */
  connections?: Partial<ConnectionLimits>;
  /** Addresses subscription callbacks may reach (buildApp callbackAllow); default loopback only. */
  callbackAllow?: readonly string[];
  /** Real backends for the topology (buildTopology's options: memcached, redisUrl, …). */
  backends?: Pick<BuildOptions, 'memcached' | 'redisUrl' | 'amqpUrl' | 'namespace'>;
}

/**
 * 2012-sharded, scaled down: 64 logical shards on 4 servers. Reads go to primaries and feeds have
 * no lagging replica, so these tests judge the HTTP layer, not replication lag (which the sim's
 * own tests cover): a feed read right after `topology.idle()` would otherwise be stale by the lag.
 */
export const SMALL_TOPOLOGY: TopologyInput = { shards: { logical: 64, physical: 4 }, database: { readPolicy: 'primary' }, feed: { replicas: 0 } };

export async function makeEnv(opts: EnvOptions = {}): Promise<TestEnv> {
  const config = loadTopology('2012-sharded', { ...SMALL_TOPOLOGY, ...opts.topology });
  const topology = await buildTopology({ config, seed: opts.seed ?? 1, sampleEveryMs: 0, ...(opts.clock ? { clock: opts.clock } : {}), ...opts.backends });
  const app = await buildApp({ topology, rateLimitPerHour: opts.rateLimitPerHour ?? 0, adminToken: ADMIN_TOKEN, ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}), ...(opts.connections ? { connections: opts.connections } : {}), ...(opts.callbackAllow ? { callbackAllow: opts.callbackAllow } : {}) });
  return {
    topology,
    app,
    async close() {
      await app.close();
      await topology.close();
    },
  };
}

/** app.inject for the admin API: the request (a URL or inject options) with the admin token added. */
export function simInject(app: FastifyInstance, req: string | InjectOptions): Promise<LightMyRequestResponse> {
  const opts: InjectOptions = typeof req === 'string' ? { method: 'GET', url: req } : req;
  return app.inject({ ...opts, headers: { ...(opts.headers ?? {}), ...ADMIN_HEADERS } });
}

export interface Account {
  id: string;
  token: string;
  username: string;
}

export async function signup(app: FastifyInstance, username: string, opts: { isPrivate?: boolean; fullName?: string; password?: string } = {}): Promise<Account> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/accounts',
    payload: { username, password: opts.password ?? 'secret123', full_name: opts.fullName ?? `${username} Fullname`, is_private: opts.isPrivate ?? false },
  });
  if (res.statusCode !== 200) throw new Error(`signup ${username}: ${res.statusCode} ${res.body}`);
  const body = res.json() as { data: { access_token: string; user: { id: string } } };
  return { id: body.data.user.id, token: body.data.access_token, username };
}

const jpegCache = new Map<string, Buffer>();

/** A small real JPEG (or PNG) of one colour. */
export async function image(opts: { width?: number; height?: number; color?: string; format?: 'jpeg' | 'png' } = {}): Promise<Buffer> {
  const key = JSON.stringify(opts);
  const hit = jpegCache.get(key);
  if (hit) return hit;
  const s = sharp({ create: { width: opts.width ?? 64, height: opts.height ?? 48, channels: 3, background: opts.color ?? '#3897f0' } });
  const buf = await (opts.format === 'png' ? s.png() : s.jpeg()).toBuffer();
  jpegCache.set(key, buf);
  return buf;
}

export interface FilePart {
  field: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
}

/** A multipart/form-data body, built by hand so tests control every byte. */
export function multipart(fields: Record<string, string>, files: FilePart[] = []): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----scalegram' + 'x'.repeat(12);
  const chunks: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const f of files) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.field}"; filename="${f.filename}"\r\nContent-Type: ${f.contentType}\r\n\r\n`));
    chunks.push(f.bytes, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

export interface UploadOptions {
  caption?: string;
  lat?: number;
  lng?: number;
  locationName?: string;
  filter?: string;
  foursquareId?: string;
  foursquareV2Id?: string;
  bytes?: Buffer;
}

export function uploadRequest(token: string | null, opts: UploadOptions & { photo?: Buffer } = {}, photo?: Buffer) {
  const fields: Record<string, string> = {};
  if (opts.caption !== undefined) fields.caption = opts.caption;
  if (opts.lat !== undefined) fields.lat = String(opts.lat);
  if (opts.lng !== undefined) fields.lng = String(opts.lng);
  if (opts.locationName !== undefined) fields.location_name = opts.locationName;
  if (opts.filter !== undefined) fields.filter = opts.filter;
  if (opts.foursquareId !== undefined) fields.foursquare_id = opts.foursquareId;
  if (opts.foursquareV2Id !== undefined) fields.foursquare_v2_id = opts.foursquareV2Id;
  const bytes = photo ?? opts.bytes;
  const body = multipart(fields, bytes ? [{ field: 'photo', filename: 'photo.jpg', contentType: 'image/jpeg', bytes }] : []);
  return { method: 'POST' as const, url: `/v1/media${token ? `?access_token=${encodeURIComponent(token)}` : ''}`, payload: body.payload, headers: body.headers };
}

/** Uploads a generated JPEG and returns the v1 media object. */
export async function upload(app: FastifyInstance, who: Account, opts: UploadOptions = {}): Promise<V1MediaLike> {
  const res = await app.inject(uploadRequest(who.token, opts, opts.bytes ?? (await image())));
  if (res.statusCode !== 200) throw new Error(`upload by ${who.username}: ${res.statusCode} ${res.body}`);
  return (res.json() as { data: V1MediaLike }).data;
}

export interface V1MediaLike {
  id: string;
  link: string;
  user: { id: string };
  tags: string[];
  location: { id: string } | null;
  images: Record<string, { url: string; width: number; height: number }>;
  [k: string]: unknown;
}

export async function relate(app: FastifyInstance, who: Account, targetId: string, action: string): Promise<LightMyRequestResponse> {
  const res = await app.inject({ method: 'POST', url: `/v1/users/${targetId}/relationship?access_token=${who.token}`, payload: { action } });
  if (res.statusCode !== 200) throw new Error(`${action} ${targetId} by ${who.username}: ${res.statusCode} ${res.body}`);
  return res;
}

/** GET with the token in the query; returns the parsed body and the response. */
export async function get(app: FastifyInstance, url: string, who?: Account): Promise<{ status: number; body: Envelope; res: LightMyRequestResponse }> {
  const sep = url.includes('?') ? '&' : '?';
  const res = await app.inject({ method: 'GET', url: who ? `${url}${sep}access_token=${encodeURIComponent(who.token)}` : url });
  return { status: res.statusCode, body: res.json() as Envelope, res };
}

export interface Envelope {
  meta: { code: number; error_type?: string; error_message?: string };
  data?: unknown;
  pagination?: { next_url?: string; next_max_id?: string; [k: string]: unknown };
}

/** Asserts the v1 error envelope and returns its error_type. */
export function errorType(res: LightMyRequestResponse): string | undefined {
  const body = res.json() as Envelope;
  return body.meta?.error_type;
}

/** The path and query of an absolute URL, for app.inject(). */
export function pathOf(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}
