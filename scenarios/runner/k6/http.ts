// 'k6/http' for Scalegram's runner: k6's requests, Response, params, bodies and http_req_* samples
// with k6's tags — but every request returns a Promise, so scripts `await` it (a no-op under k6).

import { randomBytes } from 'node:crypto';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { HttpClient, type RoundTripResult, type Timings } from '../http-client.ts';
import { currentVu, sampleTags, type Runtime, type Tags } from '../runtime.ts';
import { K6ShimError, metricHandles, runtimeExt, SHIM_ERRORS, type RuntimeExt, type VuExt } from './host.ts';

// ---------------------------------------------------------------------------------------------
// Values scripts build: URLs from the http.url template, files, expected statuses.

/** What http.url`…${id}` returns: the URL, and a name with `${}` in place of each value (k6's `name` tag). */
export class HttpURL {
  constructor(
    readonly url: string,
    readonly name: string,
  ) {}
  toString(): string {
    return this.url;
  }
}

export function url(strings: TemplateStringsArray, ...args: Array<string | number | boolean>): HttpURL {
  let u = strings[0] ?? '';
  let name = u;
  for (let i = 0; i < args.length; i++) {
    u += String(args[i]) + (strings[i + 1] ?? '');
    name += '${}' + (strings[i + 1] ?? '');
  }
  return new HttpURL(u, name);
}

/** A part of a multipart body (k6's FileData). `data` may be a string, ArrayBuffer, typed array or Buffer. */
export class FileData {
  constructor(
    readonly data: string | ArrayBuffer | ArrayBufferView,
    readonly filename: string,
    readonly content_type: string,
  ) {}
}

/** As k6: the filename defaults to a timestamp, the content type to application/octet-stream. */
export function file(data: string | ArrayBuffer | ArrayBufferView | number[], filename?: string, contentType?: string): FileData {
  const d = Array.isArray(data) ? new Uint8Array(data) : data;
  return new FileData(d, filename ?? String(Date.now() * 1e6), contentType ?? 'application/octet-stream');
}

/** k6's expectedStatuses object: which statuses count as expected (http_req_failed 0, expected_response "true"). */
export class ExpectedStatuses {
  private readonly exact: Set<number>;
  private readonly ranges: Array<{ min: number; max: number }>;
  constructor(params: Array<number | { min: number; max: number }>) {
    this.exact = new Set();
    this.ranges = [];
    for (const p of params) {
      if (typeof p === 'number' && Number.isInteger(p)) this.exact.add(p);
      else if (p && typeof p === 'object' && Number.isInteger(p.min) && Number.isInteger(p.max)) this.ranges.push({ min: p.min, max: p.max });
      else throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `expectedStatuses: ${JSON.stringify(p)} is neither an integer status nor {min, max}`);
    }
  }
  match(status: number): boolean {
    if (this.exact.has(status)) return true;
    for (const r of this.ranges) if (status >= r.min && status <= r.max) return true;
    return false;
  }
}

export function expectedStatuses(...statuses: Array<number | { min: number; max: number }>): ExpectedStatuses {
  return new ExpectedStatuses(statuses);
}

/** k6's default: 200–399 are expected. null turns off expected_response and http_req_failed. */
let responseCallback: ExpectedStatuses | null = expectedStatuses({ min: 200, max: 399 });

export function setResponseCallback(callback: ExpectedStatuses | null): void {
  if (callback !== null && !(callback instanceof ExpectedStatuses)) {
    throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'setResponseCallback: only http.expectedStatuses(…) or null are supported (as in k6)');
  }
  responseCallback = callback;
}

// ---------------------------------------------------------------------------------------------
// Response

export type ResponseType = 'text' | 'binary' | 'none';
export type ResponseBody = string | ArrayBuffer | null;

const NO_OCSP = Object.freeze({ produced_at: 0, this_update: 0, next_update: 0, revocation_reason: '', revoked_at: 0, status: '' });
const NO_COOKIES: Record<string, never[]> = Object.freeze({}) as Record<string, never[]>;

export class Response {
  status: number;
  status_text: string;
  body: ResponseBody;
  url: string;
  timings: Timings;
  error: string;
  error_code: number;
  proto: string;
  remote_ip: string;
  remote_port: number;
  tls_version = '';
  tls_cipher_suite = '';
  private rawHeaders: string[] | null;
  private headersCache: Record<string, string> | null = null;
  private readonly sentMethod: string;
  private readonly sentHeaders: string[];
  private readonly sentBody: Buffer | null;
  private requestCache: Response['request'] | null = null;
  private jsonCache: { value: unknown } | null = null;

  constructor(hop: RoundTripResult, body: ResponseBody, finalUrl: string, method: string, headers: string[], sentBody: Buffer | null, errorCode: number, error: string) {
    this.status = hop.status;
    this.status_text = hop.status ? `${hop.status} ${hop.statusText}` : '';
    this.body = body;
    this.url = finalUrl;
    this.timings = hop.timings;
    this.error = error;
    this.error_code = errorCode;
    this.proto = hop.status ? 'HTTP/1.1' : '';
    this.remote_ip = hop.remoteIp;
    this.remote_port = hop.remotePort;
    this.rawHeaders = hop.rawHeaders;
    this.sentMethod = method;
    this.sentHeaders = headers;
    this.sentBody = sentBody;
  }

  /** No OCSP over plain HTTP, and TLS details are not collected: k6's empty values. */
  get ocsp(): typeof NO_OCSP {
    return NO_OCSP;
  }

  /** Cookies are not supported (see `request`'s check of params.cookies). */
  get cookies(): Record<string, never[]> {
    return NO_COOKIES;
  }

  /** Response headers with canonical names (Content-Type), repeated ones joined with ", " (as k6). */
  get headers(): Record<string, string> {
    if (!this.headersCache) this.headersCache = canonicalHeaders(this.rawHeaders);
    return this.headersCache;
  }

  /** What was sent on the final hop: headers as k6 reports them, `{Name: [values]}`. */
  get request(): { method: string; url: string; headers: Record<string, string[]>; body: string; cookies: Record<string, never[]> } {
    if (!this.requestCache) {
      const headers: Record<string, string[]> = {};
      const h = this.sentHeaders;
      for (let i = 0; i < h.length; i += 2) (headers[canonicalName(h[i]!)] ??= []).push(h[i + 1]!);
      this.requestCache = { method: this.sentMethod, url: this.url, headers, body: this.sentBody ? this.sentBody.toString('latin1') : '', cookies: {} };
    }
    return this.requestCache;
  }

  /**
   * Parses the body as JSON (cached). `selector` takes the simple part of gjson's path syntax that
   * k6 documents: dotted keys, array indexes (`data.0.id`), `#` for an array's length and `#.key`
   * to collect a key from every element; `\.` escapes a dot in a key. No match gives undefined.
   */
  json(selector?: string): unknown {
    if (!this.jsonCache) {
      if (typeof this.body !== 'string') {
        throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, this.body === null ? 'json(): the response has no body (responseType "none", or the request failed)' : 'json(): the body is binary (responseType "binary")');
      }
      this.jsonCache = { value: JSON.parse(this.body) };
    }
    return selector === undefined || selector === '' ? this.jsonCache.value : selectPath(this.jsonCache.value, splitPath(selector));
  }

  html(): never {
    throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'Response.html() (k6/html) is not supported by Scalegram\'s runner');
  }

  clickLink(): never {
    throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'Response.clickLink() (k6/html) is not supported by Scalegram\'s runner');
  }

  submitForm(): never {
    throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'Response.submitForm() (k6/html) is not supported by Scalegram\'s runner');
  }
}

function splitPath(selector: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < selector.length; i++) {
    const ch = selector[i]!;
    if (ch === '\\' && i + 1 < selector.length) cur += selector[++i];
    else if (ch === '.') {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

function selectPath(value: unknown, parts: string[]): unknown {
  let v = value;
  for (let i = 0; i < parts.length; i++) {
    const key = parts[i]!;
    if (Array.isArray(v)) {
      if (key === '#') {
        if (i === parts.length - 1) return v.length;
        const rest = parts.slice(i + 1);
        return v.map((el) => selectPath(el, rest)).filter((x) => x !== undefined);
      }
      if (!/^\d+$/.test(key)) return undefined;
      v = v[Number(key)];
    } else if (v !== null && typeof v === 'object') {
      if (!Object.prototype.hasOwnProperty.call(v, key)) return undefined;
      v = (v as Record<string, unknown>)[key];
    } else {
      return undefined;
    }
  }
  return v;
}

/** Go's CanonicalMIMEHeaderKey: content-type → Content-Type. */
function canonicalName(name: string): string {
  let out = '';
  let upper = true;
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    out += upper ? c.toUpperCase() : c.toLowerCase();
    upper = c === '-';
  }
  return out;
}

function canonicalHeaders(raw: string[] | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (let i = 0; i < raw.length; i += 2) {
    const name = canonicalName(raw[i]!);
    const value = raw[i + 1]!;
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

function rawHeader(raw: string[] | null, lowerName: string): string | undefined {
  if (!raw) return undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === lowerName.length && n.toLowerCase() === lowerName) return raw[i + 1]!;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Params and bodies

export interface Params {
  headers?: Record<string, string | number>;
  tags?: Record<string, string | number | boolean>;
  /** ms as a number, or a Go duration string ('60s', '1m30s', '500ms'). Default 60 s, as k6. */
  timeout?: string | number;
  responseType?: ResponseType;
  /** Redirects to follow (default: options.maxRedirects, else 10, as k6). */
  redirects?: number;
  responseCallback?: ExpectedStatuses | null;
  /** Throw on a transport error instead of returning status 0 (default: options.throw, else false). */
  throw?: boolean;
  auth?: 'basic' | 'digest' | 'ntlm';
  cookies?: unknown;
  jar?: unknown;
  compression?: string;
}

export type RequestBody = string | ArrayBuffer | ArrayBufferView | Record<string, unknown> | null | undefined;

interface EncodedBody {
  bytes: Buffer | null;
  contentType: string | null;
}

function toBuffer(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function formValue(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

const NO_BODY: EncodedBody = Object.freeze({ bytes: null, contentType: null });

function encodeBody(body: RequestBody): EncodedBody {
  if (body === null || body === undefined) return NO_BODY;
  if (typeof body === 'string' || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { bytes: toBuffer(body), contentType: null };
  if (typeof body !== 'object') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `unknown request body type ${typeof body}`);
  const entries = Object.entries(body);
  if (!entries.some(([, v]) => v instanceof FileData)) {
    // As k6 (Go's url.Values.Encode): keys sorted, arrays become repeated keys, spaces as '+'.
    const form = new URLSearchParams();
    for (const [k, v] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (Array.isArray(v)) for (const el of v) form.append(k, formValue(el));
      else form.append(k, formValue(v));
    }
    return { bytes: Buffer.from(form.toString(), 'utf8'), contentType: 'application/x-www-form-urlencoded' };
  }
  // multipart/form-data as Go's mime/multipart writes it (k6), fields in the object's order.
  const boundary = randomBytes(30).toString('hex');
  const parts: Buffer[] = [];
  let first = true;
  for (const [k, v] of entries) {
    const open = `${first ? '' : '\r\n'}--${boundary}\r\n`;
    first = false;
    if (v instanceof FileData) {
      parts.push(Buffer.from(`${open}Content-Disposition: form-data; name="${escapeQuotes(k)}"; filename="${escapeQuotes(v.filename)}"\r\nContent-Type: ${v.content_type}\r\n\r\n`, 'utf8'));
      parts.push(toBuffer(v.data));
    } else {
      parts.push(Buffer.from(`${open}Content-Disposition: form-data; name="${escapeQuotes(k)}"\r\n\r\n${formValue(v)}`, 'utf8'));
    }
  }
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  return { bytes: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

function escapeQuotes(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** k6 durations: a number is ms; a string is a Go duration ('1m30s') or a bare number of ms. */
export function parseDurationMs(value: string | number, what: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const s = value.trim();
    if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
    const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
    let total = 0;
    let m: RegExpExecArray | null;
    let end = 0;
    while ((m = re.exec(s))) {
      total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
      end = re.lastIndex;
    }
    if (end === s.length && end > 0) return total;
  }
  throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `invalid ${what} value ${JSON.stringify(value)}: expected ms or a duration like "60s"`);
}

// ---------------------------------------------------------------------------------------------
// The transport, per Runtime

const clients = new WeakMap<Runtime, HttpClient>();

/** The HttpClient k6/http uses in this run: the runner's (`runtime.httpClient`) or one made on first use. */
export function httpClientFor(rt: RuntimeExt): HttpClient {
  if (rt.httpClient) return rt.httpClient;
  let c = clients.get(rt);
  if (!c) clients.set(rt, (c = new HttpClient()));
  return c;
}

/** Closes the client k6/http made for this Runtime (keep-alive sockets would otherwise hold the process). */
export async function closeHttpClient(rt: Runtime): Promise<void> {
  const c = clients.get(rt);
  clients.delete(rt);
  if (c) await c.close();
}

const HTTP_METRICS = [
  ['http_reqs', 'counter', 'default'],
  ['http_req_duration', 'trend', 'time'],
  ['http_req_blocked', 'trend', 'time'],
  ['http_req_connecting', 'trend', 'time'],
  ['http_req_tls_handshaking', 'trend', 'time'],
  ['http_req_sending', 'trend', 'time'],
  ['http_req_waiting', 'trend', 'time'],
  ['http_req_receiving', 'trend', 'time'],
  ['http_req_failed', 'rate', 'default'],
  ['http_req_intended_duration', 'trend', 'time'],
  ['data_sent', 'counter', 'data'],
  ['data_received', 'counter', 'data'],
] as const;

const DEFAULT_USER_AGENT = 'Scalegram-runner/0.1 (k6-compatible; https://k6.io/)';

interface RunOptions {
  maxRedirects?: number;
  throw?: boolean;
  discardResponseBodies?: boolean;
  userAgent?: string;
  batch?: number;
}

// ---------------------------------------------------------------------------------------------
// Requests

export async function request(method: string, target: string | HttpURL | URL, body?: RequestBody, params?: Params | null): Promise<Response> {
  const rt = runtimeExt();
  const vu = currentVu() as VuExt | undefined;
  const opts = (rt.options ?? {}) as RunOptions;
  const p: Params = params ?? {};
  if (p.cookies !== undefined || p.jar !== undefined) throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'cookies and cookie jars are not supported by Scalegram\'s runner');
  if (p.compression) throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'request compression is not supported by Scalegram\'s runner');
  if (p.auth !== undefined && p.auth !== 'basic') throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, `auth "${p.auth}" is not supported by Scalegram's runner (only basic)`);
  if (p.responseCallback !== undefined && p.responseCallback !== null && !(p.responseCallback instanceof ExpectedStatuses)) {
    throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'responseCallback: only http.expectedStatuses(…) or null are supported (as in k6)');
  }
  const expected = p.responseCallback !== undefined ? p.responseCallback : responseCallback;
  const timeoutMs = p.timeout === undefined ? 60_000 : parseDurationMs(p.timeout, 'timeout');
  const responseType: ResponseType = p.responseType ?? (opts.discardResponseBodies ? 'none' : 'text');
  if (responseType !== 'text' && responseType !== 'binary' && responseType !== 'none') {
    throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `invalid responseType ${JSON.stringify(responseType)}`);
  }
  let redirectsLeft = p.redirects ?? opts.maxRedirects ?? 10;
  const throwOnError = p.throw ?? opts.throw ?? false;

  const nameTag = p.tags?.name !== undefined ? String(p.tags.name) : target instanceof HttpURL && target.name !== target.url ? target.name : undefined;
  let u: URL;
  try {
    u = parseUrl(String(target));
  } catch {
    // As k6: an invalid URL is an error on the response (code 1020), with no request and no sample.
    const message = `invalid URL ${JSON.stringify(String(target))}`;
    if (throwOnError) throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, message);
    return failedBeforeSending(String(target), method, message, 1020);
  }

  const encoded = encodeBody(body);
  let headers = buildHeaders(p.headers, encoded.contentType, opts.userAgent ?? DEFAULT_USER_AGENT, p.auth === 'basic' ? u : null);
  let bodyBytes = encoded.bytes;
  let m = method.toUpperCase();
  const client = httpClientFor(rt);

  for (;;) {
    const hop = await client.roundTrip({ method: m, url: u, headers, body: bodyBytes, timeoutMs, signal: vu?.signal, keepBody: responseType !== 'none' }, vu?.id);
    if (hop.aborted) throw vu!.signal.reason instanceof Error ? vu!.signal.reason : new DOMException('the iteration was interrupted', 'AbortError');
    let errorCode = hop.error ? hop.error.code : hop.status >= 400 ? 1000 + hop.status : 0;
    let error = hop.error ? hop.error.message : '';
    let bodyValue: ResponseBody = null;
    if (hop.body && !hop.error) {
      try {
        bodyValue = decodeBody(hop, responseType);
      } catch (e) {
        // k6's 1701: the body could not be decompressed; the status stays.
        errorCode = 1701;
        error = `error decompressing response body: ${(e as Error).message}`;
      }
    } else if (responseType === 'text' && !hop.error) {
      bodyValue = '';
    }
    emitSamples(rt, vu, m, u, nameTag, p.tags, hop, expected, errorCode);
    const res = new Response(hop, bodyValue, u.href, m, headers, bodyBytes, errorCode, error);
    if (hop.error && throwOnError) throw new K6ShimError(SHIM_ERRORS.REQUEST_FAILED, `${m} ${u.href}: ${error}`);
    const location = isRedirect(hop.status) ? rawHeader(hop.rawHeaders, 'location') : undefined;
    if (location === undefined || redirectsLeft <= 0) return res;
    redirectsLeft--;
    const next = new URL(location, u);
    // 301/302/303 turn into a body-less GET (as browsers and Go do); 307/308 repeat the request.
    if (hop.status !== 307 && hop.status !== 308 && m !== 'HEAD') {
      m = 'GET';
      bodyBytes = null;
      headers = withoutContentHeaders(headers);
    }
    u = next;
  }
}

/** Parsed URLs by text: scripts request the same URLs over and over (never mutated here; cleanUrl copies). */
const urlCache = new Map<string, URL>();
const URL_CACHE_MAX = 4096;

function parseUrl(text: string): URL {
  let u = urlCache.get(text);
  if (!u) {
    u = new URL(text);
    // Budget: a full cache is dropped whole rather than tracked per entry.
    if (urlCache.size >= URL_CACHE_MAX) urlCache.clear();
    urlCache.set(text, u);
  }
  return u;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function failedBeforeSending(href: string, method: string, message: string, code: number): Response {
  const hop: RoundTripResult = {
    status: 0,
    statusText: '',
    rawHeaders: null,
    body: null,
    timings: { blocked: 0, connecting: 0, tls_handshaking: 0, sending: 0, waiting: 0, receiving: 0, duration: 0 },
    remoteIp: '',
    remotePort: 0,
    bytesSent: 0,
    bytesReceived: 0,
    error: { code, message },
    aborted: false,
  };
  return new Response(hop, null, href, method, [], null, code, message);
}

/** The header list of a plain request (no headers, body or credentials), shared: nothing mutates header lists. */
let plainHeaders: { userAgent: string; list: string[] } = { userAgent: '', list: [] };

function buildHeaders(user: Params['headers'], contentType: string | null, userAgent: string, basicAuthFrom: URL | null): string[] {
  if (!user && !contentType && !(basicAuthFrom && basicAuthFrom.username)) {
    if (plainHeaders.userAgent !== userAgent) plainHeaders = { userAgent, list: userAgent ? ['User-Agent', userAgent] : [] };
    return plainHeaders.list;
  }
  const out: string[] = [];
  let hasUA = false;
  let hasCT = false;
  if (user) {
    for (const k in user) {
      const lower = k.toLowerCase();
      if (lower === 'user-agent') hasUA = true;
      else if (lower === 'content-type') hasCT = true;
      out.push(k, String(user[k]));
    }
  }
  if (!hasUA && userAgent) out.push('User-Agent', userAgent);
  if (!hasCT && contentType) out.push('Content-Type', contentType);
  if (basicAuthFrom && basicAuthFrom.username) {
    const creds = `${decodeURIComponent(basicAuthFrom.username)}:${decodeURIComponent(basicAuthFrom.password)}`;
    out.push('Authorization', `Basic ${Buffer.from(creds, 'utf8').toString('base64')}`);
  }
  return out;
}

function withoutContentHeaders(headers: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase();
    if (lower !== 'content-type' && lower !== 'content-length') out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

function decodeBody(hop: RoundTripResult, responseType: ResponseType): ResponseBody {
  let bytes = hop.body!;
  const encoding = rawHeader(hop.rawHeaders, 'content-encoding')?.trim().toLowerCase();
  // As k6: a compressed answer (only when the script asked for one with Accept-Encoding) is decoded.
  if (encoding && encoding !== 'identity') {
    if (encoding === 'gzip' || encoding === 'x-gzip') bytes = gunzipSync(bytes);
    else if (encoding === 'deflate') bytes = inflateSync(bytes);
    else if (encoding === 'br') bytes = brotliDecompressSync(bytes);
    else throw new Error(`unsupported content-encoding ${encoding}`);
  }
  if (responseType === 'binary') return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return bytes.toString('utf8');
}

/** k6's URL.Clean(): the URL without credentials. */
function cleanUrl(u: URL): string {
  if (!u.username && !u.password) return u.href;
  const c = new URL(u.href);
  c.username = '';
  c.password = '';
  return c.href;
}

function emitSamples(
  rt: RuntimeExt,
  vu: VuExt | undefined,
  method: string,
  u: URL,
  nameTag: string | undefined,
  userTags: Params['tags'],
  hop: RoundTripResult,
  expected: ExpectedStatuses | null,
  errorCode: number,
): void {
  const h = metricHandles(rt, 'http', HTTP_METRICS);
  const base = sampleTags();
  // data_sent/data_received carry the VU's tags only, as k6's connection samples do.
  h.data_sent.add(hop.bytesSent, base);
  h.data_received.add(hop.bytesReceived, base);

  // Copied key by key: a spread followed by new keys makes V8 build a slow object (~8 µs here).
  const tags: Tags = {};
  for (const k in base) tags[k] = base[k]!;
  if (userTags) for (const k in userTags) tags[k] = String(userTags[k]);
  // As k6 ≥ 0.41: with a name (set, or from http.url) the url tag takes the same value, so URLs
  // that differ only by ids do not multiply the series; without one both are the URL.
  const name = nameTag ?? cleanUrl(u);
  tags.name = name;
  tags.url = name;
  tags.method = method;
  tags.status = String(hop.status);
  if (hop.error) tags.error = hop.error.message;
  else tags.proto = 'HTTP/1.1';
  if (errorCode) tags.error_code = String(errorCode);
  let failed = -1;
  if (expected) {
    const ok = expected.match(hop.status);
    tags.expected_response = ok ? 'true' : 'false';
    failed = ok ? 0 : 1;
  }
  const t = hop.timings;
  h.http_reqs.add(1, tags);
  h.http_req_duration.add(t.duration, tags);
  h.http_req_blocked.add(t.blocked, tags);
  h.http_req_connecting.add(t.connecting, tags);
  h.http_req_tls_handshaking.add(t.tls_handshaking, tags);
  h.http_req_sending.add(t.sending, tags);
  h.http_req_waiting.add(t.waiting, tags);
  h.http_req_receiving.add(t.receiving, tags);
  if (failed >= 0) h.http_req_failed.add(failed, tags);
  // From the intended start of the iteration: an open-model iteration that started late carries
  // its lateness into every request it makes, so queueing in the generator is not hidden.
  const lateMs = vu ? Math.max(0, vu.startMs - vu.intendedStartMs) : 0;
  h.http_req_intended_duration.add(t.duration + lateMs, tags);
}

export function get(target: string | HttpURL | URL, params?: Params | null): Promise<Response> {
  return request('GET', target, null, params);
}

export function head(target: string | HttpURL | URL, params?: Params | null): Promise<Response> {
  return request('HEAD', target, null, params);
}

export function post(target: string | HttpURL | URL, body?: RequestBody, params?: Params | null): Promise<Response> {
  return request('POST', target, body, params);
}

export function put(target: string | HttpURL | URL, body?: RequestBody, params?: Params | null): Promise<Response> {
  return request('PUT', target, body, params);
}

export function patch(target: string | HttpURL | URL, body?: RequestBody, params?: Params | null): Promise<Response> {
  return request('PATCH', target, body, params);
}

export function del(target: string | HttpURL | URL, body?: RequestBody, params?: Params | null): Promise<Response> {
  return request('DELETE', target, body, params);
}

export function options(target: string | HttpURL | URL, body?: RequestBody, params?: Params | null): Promise<Response> {
  return request('OPTIONS', target, body, params);
}

/** k6's asyncRequest; here every request is asynchronous, so it is `request`. */
export function asyncRequest(method: string, target: string | HttpURL | URL, body?: RequestBody, params?: Params | null): Promise<Response> {
  return request(method, target, body, params);
}

type BatchRequest =
  | string
  | HttpURL
  | [string, string | HttpURL, RequestBody?, (Params | null)?]
  | { method: string; url: string | HttpURL; body?: RequestBody; params?: Params | null };

function batchOne(req: BatchRequest): Promise<Response> {
  if (typeof req === 'string' || req instanceof HttpURL) return request('GET', req, null, null);
  if (Array.isArray(req)) {
    if (req.length < 2) throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `invalid batch request ${JSON.stringify(req)}`);
    return request(req[0], req[1], req[2], req[3]);
  }
  if (req && typeof req === 'object' && 'url' in req) {
    const method = (req.method ?? 'GET').toUpperCase();
    return request(method, req.url, method === 'GET' || method === 'HEAD' ? null : req.body, req.params);
  }
  throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `invalid batch request ${JSON.stringify(req)}`);
}

/**
 * Requests in parallel, at most options.batch (default 20, as k6) at a time; answers in the same
 * shape (array or object). k6's per-host limit (batchPerHost) is not applied.
 */
export async function batch(requests: BatchRequest[] | Record<string, BatchRequest>): Promise<Response[] | Record<string, Response>> {
  const limit = Math.max(1, ((runtimeExt().options ?? {}) as RunOptions).batch ?? 20);
  const keys = Array.isArray(requests) ? requests.map((_, i) => i) : Object.keys(requests);
  const list = keys.map((k) => (requests as Record<string | number, BatchRequest>)[k]!);
  const results: Response[] = new Array(list.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const i = next++;
      results[i] = await batchOne(list[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, list.length) }, worker));
  if (Array.isArray(requests)) return results;
  const out: Record<string, Response> = {};
  keys.forEach((k, i) => (out[k as string] = results[i]!));
  return out;
}

export function cookieJar(): never {
  throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, 'http.cookieJar() is not supported by Scalegram\'s runner');
}

export const TLS_1_0 = 'tls1.0';
export const TLS_1_1 = 'tls1.1';
export const TLS_1_2 = 'tls1.2';
export const TLS_1_3 = 'tls1.3';

export default {
  request,
  asyncRequest,
  get,
  head,
  post,
  put,
  patch,
  del,
  options,
  batch,
  file,
  url,
  expectedStatuses,
  setResponseCallback,
  cookieJar,
  TLS_1_0,
  TLS_1_1,
  TLS_1_2,
  TLS_1_3,
};
