// The photo service's v1 API and the /_sim admin endpoints, for scenario scripts. Only k6 modules
// are used, so the same files run under Scalegram's runner and under real k6 (`scalegram export-k6`).
// Every request is awaited: a no-op under k6, required on Node.

import http from 'k6/http';

/** The server under test: set by `scalegram run`, or `k6 run -e BASE_URL=http://host:port`. */
export function baseUrl(): string {
  return (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
}

/**
 * Headers for the admin API (/_sim/*): its bearer token comes from __ENV.ADMIN_TOKEN (set by
 * `scalegram run` for the server it starts; give it with `-e ADMIN_TOKEN=…` for `--target` or k6).
 */
export function adminHeaders(json = false): Record<string, string> {
  const headers: Record<string, string> = json ? { 'Content-Type': 'application/json' } : {};
  if (__ENV.ADMIN_TOKEN) headers.Authorization = `Bearer ${__ENV.ADMIN_TOKEN}`;
  return headers;
}

function adminFailure(what: string, res: { status: number; body: unknown }): Error {
  const hint = res.status === 401 ? ' (the admin API needs its token: -e ADMIN_TOKEN=<the token scalegram serve printed>)' : '';
  return new Error(`${what} failed: ${res.status}${hint} ${String(res.body).slice(0, 300)}`);
}

export interface SeededUser {
  id: string;
  username: string;
  access_token: string;
  followed_by?: number;
}

export interface SeedRequest {
  users: number;
  avgFollows: number;
  celebrities?: number;
  privateFraction?: number;
  mediaPerUser?: number;
  /** Share of all accounts that follow the first celebrity (0–1). */
  celebrityReach?: number;
  seed?: number;
  /** Read what requests will read once after seeding (a warm cache). */
  warmCaches?: boolean;
}

/** Seeds a population through the server's bulk path (POST /_sim/seed); returns its answer. */
export async function seed(body: SeedRequest): Promise<{ users: number; follows: number; media: number; sample: SeededUser[] }> {
  const res = await http.post(`${baseUrl()}/_sim/seed`, JSON.stringify(body), { headers: adminHeaders(true), tags: { name: 'sim_seed' }, timeout: '600s' });
  if (res.status !== 200) throw adminFailure('seeding', res);
  return res.json() as never;
}

/** A page of seeded users with their tokens (GET /_sim/users). */
export async function users(offset: number, limit: number, stride = 1): Promise<SeededUser[]> {
  const res = await http.get(`${baseUrl()}/_sim/users?offset=${offset}&limit=${limit}${stride > 1 ? `&stride=${stride}` : ''}`, { headers: adminHeaders(), tags: { name: 'sim_users' } });
  if (res.status !== 200) throw adminFailure('listing users', res);
  return (res.json() as unknown as { users: SeededUser[] }).users;
}

/** POSTs to an admin endpoint (faults, lag, shard moves); throws on an error answer. */
export async function admin(path: string, body: unknown = {}): Promise<unknown> {
  const res = await http.post(`${baseUrl()}${path}`, JSON.stringify(body), { headers: adminHeaders(true), tags: { name: 'sim_admin' }, timeout: '600s' });
  if (res.status !== 200) throw adminFailure(path, res);
  return res.json();
}

export async function signup(username: string, fullName: string): Promise<SeededUser | null> {
  const res = await http.post(`${baseUrl()}/v1/accounts`, { username, password: 'scalegram', full_name: fullName }, { tags: { name: 'signup' } });
  if (res.status !== 200) return null;
  const data = (res.json() as unknown as { data: { access_token: string; user: { id: string; username: string } } }).data;
  return { id: data.user.id, username: data.user.username, access_token: data.access_token };
}

export function follow(token: string, userId: string) {
  return http.post(`${baseUrl()}/v1/users/${userId}/relationship?access_token=${token}`, { action: 'follow' }, { tags: { name: 'follow' } });
}

export function feed(token: string, count = 20) {
  return http.get(`${baseUrl()}/v1/users/self/feed?count=${count}&access_token=${token}`, { tags: { name: 'feed' } });
}

export function media(token: string, id: string) {
  return http.get(`${baseUrl()}/v1/media/${id}?access_token=${token}`, { tags: { name: 'media' } });
}

export function like(token: string, mediaId: string) {
  return http.post(`${baseUrl()}/v1/media/${mediaId}/likes?access_token=${token}`, null, { tags: { name: 'like' } });
}

export function comment(token: string, mediaId: string, text: string) {
  return http.post(`${baseUrl()}/v1/media/${mediaId}/comments?access_token=${token}`, { text }, { tags: { name: 'comment' } });
}

/** Uploads a photo (multipart, as the v1 clients did). `photo` is the bytes from `open(path, 'b')`. */
export function upload(token: string, photo: ArrayBuffer, caption: string) {
  return http.post(`${baseUrl()}/v1/media?access_token=${token}`, { photo: http.file(photo, 'photo.jpg', 'image/jpeg'), caption }, { tags: { name: 'upload' } });
}

// A private account's photos answer 403 (APINotAllowedError) to non-followers, as in v1: an
// expected answer, not a failed request (so it does not count in http_req_failed).
const MEDIA_EXPECTED = http.expectedStatuses(200, 403);

export function recentMedia(token: string, userId: string, count = 5) {
  return http.get(`${baseUrl()}/v1/users/${userId}/media/recent?count=${count}&access_token=${token}`, { tags: { name: 'user_media' }, responseCallback: MEDIA_EXPECTED });
}
