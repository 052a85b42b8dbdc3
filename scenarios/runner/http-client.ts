// The runner's HTTP transport: each VU its own keep-alive connection (as in k6) — for plain http a
// raw HTTP/1.1 connection (http1-connection.ts, the hot path), for https an undici Client — and a
// shared undici pool for the rest (setup, batch), one round trip per call (k6/http follows
// redirects) and k6's timings per request.
//
// What each timing measures here (all ms, from performance.now()):
// - blocked: from the call until undici hands the request to a socket, minus the connect below —
//   waiting for a free connection, including the one event-loop turn undici waits before reusing a
//   socket after a response (k6: waiting for a connection slot).
// - connecting: the TCP connect of a new socket, charged to the first request sent on it (0 on a
//   reused keep-alive socket, as in k6); tls_handshaking: the TLS part of that connect (0 for http).
// - sending: from handing the request to the socket until its last byte was passed to the socket
//   (written to the kernel, or queued in Node's buffer under back-pressure).
// - waiting: from then until the response's status line and headers were parsed (time to first byte,
//   as read by the event loop: a busy loop delays it, as it delays any Node client).
// - receiving: from the headers until the last body byte was parsed.
// - duration = sending + waiting + receiving (k6's http_req_duration; excludes blocked and connecting).
// Bytes sent and received are the socket's own counters around the exchange (pipelining is off, so
// one exchange owns its socket meanwhile): request line, headers and body; status line, headers,
// chunk framing and body.

import { channel } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Client, Pool, buildConnector, type Dispatcher } from 'undici';
import { Http1Connection, requestHead, type Http1Exchange } from './http1-connection.ts';

export interface HttpClientOptions {
  /**
   * Connections per origin in the shared pool, which serves requests without a VU (setup,
   * teardown) and a VU's concurrent ones (batch); null = unlimited. A VU's own connection is extra.
   */
  connectionsPerOrigin?: number | null;
  /**
   * ms an idle keep-alive connection stays open when the server sends no `Keep-Alive: timeout` hint
   * (with one, undici follows the hint, up to 10 min). Default 4000, undici's: short enough that a
   * server closing idle sockets without saying so rarely races a new request.
   */
  keepAliveTimeoutMs?: number;
  /** ms allowed for a TCP (+TLS) connect before the request fails with k6's 1211. */
  connectTimeoutMs?: number;
  /**
   * ms a VU's own idle connection is kept (default 60 s, below Go's 90 s idle timeout, as k6's VUs
   * keep theirs), or less when the server announces a shorter `Keep-Alive: timeout`. Short limits
   * make slow phases reconnect every VU at once, which floods the server's accept queue.
   */
  laneKeepAliveTimeoutMs?: number;
}

export interface RoundTripRequest {
  method: string;
  url: URL;
  /** Flat [name, value, name, value, …] as undici takes them. */
  headers: string[];
  body: Buffer | null;
  /** ms for the whole exchange (k6's `timeout`, default 60 s); 0 = none. */
  timeoutMs: number;
  /** Stops waiting when it aborts (the VU's iteration was interrupted). */
  signal?: AbortSignal | undefined;
  /** false: read and count the body but keep no bytes (k6's responseType 'none'). */
  keepBody: boolean;
}

export interface Timings {
  blocked: number;
  connecting: number;
  tls_handshaking: number;
  sending: number;
  waiting: number;
  receiving: number;
  duration: number;
}

/** A transport failure, with k6's error code (https://grafana.com/docs/k6/latest/javascript-api/error-codes). */
export interface TransportError {
  code: number;
  message: string;
}

export interface RoundTripResult {
  /** 0 when no response was received (error is set). */
  status: number;
  statusText: string;
  /** The response's header fields as sent: [name, value, …] (latin1); null without a response. */
  rawHeaders: string[] | null;
  /** The body bytes (null when keepBody was false or there was no response). */
  body: Buffer | null;
  timings: Timings;
  remoteIp: string;
  remotePort: number;
  bytesSent: number;
  bytesReceived: number;
  error: TransportError | null;
  /** True when the signal aborted the exchange (the caller stops; no sample should be emitted). */
  aborted: boolean;
}

/** k6's transport error codes (lib/netext/httpext/error_codes.go), with k6's messages. */
export const K6_ERROR_CODES = {
  generic: 1000,
  invalidUrl: 1020,
  requestTimeout: 1050,
  dns: 1100,
  dnsNoSuchHost: 1101,
  tcp: 1200,
  tcpBrokenPipe: 1201,
  tcpDial: 1210,
  tcpDialTimeout: 1211,
  tcpDialRefused: 1212,
  tcpDialUnknownErrno: 1213,
  tcpResetByPeer: 1220,
  tls: 1300,
} as const;

const C = K6_ERROR_CODES;

/** Maps a Node/undici error to k6's code and message (walking `cause`, where undici keeps the errno). */
export function classifyError(err: unknown): TransportError {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    switch (e.code) {
      case 'ECONNREFUSED':
        return { code: C.tcpDialRefused, message: 'dial: connection refused' };
      case 'UND_ERR_CONNECT_TIMEOUT':
        return { code: C.tcpDialTimeout, message: 'dial: i/o timeout' };
      case 'ECONNRESET':
        return { code: C.tcpResetByPeer, message: 'read: connection reset by peer' };
      case 'EPIPE':
        return { code: C.tcpBrokenPipe, message: 'write: broken pipe' };
      case 'ENOTFOUND':
        return { code: C.dnsNoSuchHost, message: 'lookup: no such host' };
      case 'EAI_AGAIN':
      case 'EAI_FAIL':
        return { code: C.dns, message: `lookup: ${String(e.message)}` };
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
      case 'EADDRNOTAVAIL':
        return { code: C.tcpDialUnknownErrno, message: `dial: ${String(e.code)}` };
      case 'ETIMEDOUT':
        return { code: C.tcpDialTimeout, message: 'dial: i/o timeout' };
      case 'UND_ERR_HEADERS_TIMEOUT':
      case 'UND_ERR_BODY_TIMEOUT':
        return { code: C.requestTimeout, message: 'request timeout' };
      case 'ERR_INVALID_URL':
        return { code: C.invalidUrl, message: String(e.message) };
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'SELF_SIGNED_CERT_IN_CHAIN':
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
        return { code: C.tls, message: `tls: ${String(e.message)}` };
    }
  }
  // undici's "other side closed" (UND_ERR_SOCKET) is Go's EOF, which k6 reports as a generic error.
  const message = err instanceof Error ? err.message : String(err);
  return { code: C.generic, message };
}

const kOurs = Symbol('scalegram.socket');
const kConnectMs = Symbol('scalegram.connectMs');
const kTlsMs = Symbol('scalegram.tlsMs');

interface OurSocket extends Socket {
  [kOurs]?: true;
  /** Set when the socket connects; cleared once charged to the first request sent on it. */
  [kConnectMs]?: number;
  [kTlsMs]?: number;
}

/**
 * undici calls a handler's onConnect and then publishes `undici:client:sendHeaders` (with the socket)
 * synchronously within one function, so the exchange that just started is the one the socket
 * belongs to: this is how an exchange learns its socket (for connect time, bytes and the peer).
 */
let startedExchange: Exchange | null = null;

channel('undici:client:sendHeaders').subscribe((message) => {
  const ex = startedExchange;
  startedExchange = null;
  const socket = (message as { socket?: OurSocket }).socket;
  if (!ex || !socket || socket[kOurs] !== true) return;
  ex.socket = socket;
  ex.bytesRead0 = socket.bytesRead;
  ex.bytesWritten0 = socket.bytesWritten;
  const connectMs = socket[kConnectMs];
  if (connectMs !== undefined) {
    ex.connectMs = connectMs;
    ex.tlsMs = socket[kTlsMs] ?? 0;
    socket[kConnectMs] = undefined;
  }
});

function timedConnector(base: buildConnector.connector, tls: boolean): buildConnector.connector {
  return (options, callback) => {
    const t0 = performance.now();
    let tcpAt = -1;
    const socket = (base as unknown as (o: typeof options, cb: buildConnector.Callback) => OurSocket)(options, (err, sock) => {
      if (sock) {
        const s = sock as OurSocket;
        const done = performance.now();
        s[kOurs] = true;
        s[kConnectMs] = (tls && tcpAt >= 0 ? tcpAt : done) - t0;
        s[kTlsMs] = tls && tcpAt >= 0 ? done - tcpAt : 0;
        callback(null, sock);
      } else {
        callback(err!, null);
      }
    });
    if (tls) socket.once('connect', () => (tcpAt = performance.now()));
  };
}

const NO_HEADERS: string[] = [];
const EMPTY = Buffer.alloc(0);

/**
 * One request's life on the wire; also its undici dispatch handler (the legacy API, so undici does
 * not wrap it) and the raw connection's exchange.
 */
class Exchange implements Dispatcher.DispatchHandler, Http1Exchange {
  readonly t0 = performance.now();
  tStart = -1;
  tSent = -1;
  tHeaders = -1;
  socket: OurSocket | null = null;
  connectMs = 0;
  tlsMs = 0;
  bytesRead0 = 0;
  bytesWritten0 = 0;
  status = 0;
  statusText = '';
  rawHeaders: string[] | null = null;
  /** On a raw connection: the request's bytes, and what the connection reported at the end. */
  head: Buffer = EMPTY;
  raw: { written: number; read: number; ip: string; port: number } | null = null;
  chunks: Buffer[] = [];
  finished = false;
  abortUndici: ((err?: Error) => void) | null = null;
  timer: NodeJS.Timeout | null = null;
  /** performance.now() by which the exchange times out, when the sweep watches it; else 0. */
  deadline = 0;
  /** The VU's connection this exchange holds, released when it finishes. */
  lane: Lane | null = null;
  /** The VU's raw connection this exchange is on. */
  rawConn: Http1Connection | null = null;
  /** The in-flight set of the request's signal, while this exchange is in it. */
  watchers: Set<Exchange | Http1Connection> | null = null;
  /** Why we gave up before undici finished (timeout, signal); undici is told at its next callback. */
  cancel: Error | null = null;

  constructor(
    readonly req: RoundTripRequest,
    readonly resolve: (r: RoundTripResult) => void,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    if (this.cancel) return abort(this.cancel);
    this.abortUndici = abort;
    this.tStart = performance.now();
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the sendHeaders subscriber needs the exchange that just started
    startedExchange = this;
  }

  onRequestSent(): void {
    this.tSent = performance.now();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusText: string): boolean {
    // 1xx informational answers precede the real one; k6 (Go) does not report them either.
    if (statusCode < 200) return true;
    this.onResponseHead(statusCode, statusText, rawHeaders.map((b) => b.toString('latin1')));
    return true;
  }

  // The raw connection's callbacks (Http1Exchange).
  get method(): string {
    return this.req.method;
  }

  get keepBody(): boolean {
    return this.req.keepBody;
  }

  onConnected(connectMs: number): void {
    this.connectMs = connectMs;
  }

  onWriteStart(): void {
    this.tStart = performance.now();
  }

  onSent(): void {
    this.tSent = performance.now();
  }

  onResponseHead(status: number, statusText: string, headers: string[]): void {
    this.tHeaders = performance.now();
    if (this.tSent < 0) this.tSent = this.tHeaders;
    this.status = status;
    this.statusText = statusText;
    this.rawHeaders = headers;
  }

  onBody(chunk: Buffer): void {
    if (this.req.keepBody) this.chunks.push(chunk);
  }

  onDone(err: Error | null, written: number, read: number, ip: string, port: number): void {
    this.raw = { written, read, ip, port };
    this.finish(err);
  }

  onData(chunk: Buffer): boolean {
    if (this.req.keepBody) this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    this.finish(null);
  }

  onError(err: Error): void {
    this.finish(err);
  }

  /** Gives up now (timeout or signal) and tells undici to drop the request. */
  giveUp(reason: Error): void {
    if (this.finished) return;
    this.cancel = reason;
    this.finish(reason);
    if (this.abortUndici) this.abortUndici(reason);
  }

  private finish(err: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.deadline > 0 && this.rawConn === null) deadlines.unwatch(this);
    if (this.watchers) this.watchers.delete(this);
    if (this.lane) this.lane.busy = false;
    if (this.raw === null && this.rawConn !== null) {
      // Given up (timeout, signal) before the raw connection finished: it is closed.
      this.rawConn.abort();
    }
    const tEnd = performance.now();
    const started = this.tStart >= 0;
    const blocked = Math.max(0, (started ? this.tStart : tEnd) - this.t0 - this.connectMs - this.tlsMs);
    const tSent = this.tSent >= 0 ? this.tSent : started ? tEnd : -1;
    const sending = started ? tSent - this.tStart : 0;
    const waiting = started ? (this.tHeaders >= 0 ? this.tHeaders : tEnd) - tSent : 0;
    const receiving = this.tHeaders >= 0 ? tEnd - this.tHeaders : 0;
    const s = this.socket;
    const aborted = err !== null && err === this.cancel && this.req.signal?.aborted === true;
    const ok = err === null;
    this.resolve({
      status: ok ? this.status : 0,
      statusText: ok ? this.statusText : '',
      rawHeaders: ok ? this.rawHeaders : null,
      body: ok && this.req.keepBody ? (this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)) : null,
      timings: { blocked, connecting: this.connectMs, tls_handshaking: this.tlsMs, sending, waiting, receiving, duration: sending + waiting + receiving },
      remoteIp: this.raw ? this.raw.ip : (s?.remoteAddress ?? ''),
      remotePort: this.raw ? this.raw.port : (s?.remotePort ?? 0),
      bytesSent: this.raw ? this.raw.written : s ? s.bytesWritten - this.bytesWritten0 : 0,
      bytesReceived: this.raw ? this.raw.read : s ? s.bytesRead - this.bytesRead0 : 0,
      error: ok ? null : err === this.cancel && !aborted ? { code: C.requestTimeout, message: 'request timeout' } : classifyError(err),
      aborted,
    });
  }
}

/** A VU's own connection to one origin, and whether one of its requests is on it now. */
interface Lane {
  client: Client;
  busy: boolean;
}

export class HttpClient {
  private readonly pools = new Map<string, Pool>();
  /** Per origin, per lane (VU id): the VU's own connection. */
  private readonly lanes = new Map<string, Map<number, Lane>>();
  /** Per origin, per lane (VU id): the VU's own raw HTTP/1.1 connection (plain http). */
  private readonly rawLanes = new Map<string, Map<number, Http1Connection>>();
  private readonly options: Required<HttpClientOptions>;
  private closed = false;

  constructor(options: HttpClientOptions = {}) {
    this.options = Object.freeze({
      connectionsPerOrigin: options.connectionsPerOrigin ?? null,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 4_000,
      laneKeepAliveTimeoutMs: options.laneKeepAliveTimeoutMs ?? 60_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    }) as Required<HttpClientOptions>;
  }

  /**
   * One exchange (no redirects). Never rejects: transport failures come back as `error`.
   *
   * With a `lane` (a VU id), the request goes on that VU's own connection when none of the VU's
   * requests is on it — as in k6, where each VU has its own connections — and otherwise (batch,
   * concurrent async requests) on the shared pool. A shared pool alone would not do: undici waits
   * one event-loop turn before reusing a socket after a response, so a VU's next request, sent at
   * once, would find its socket "busy" and open another — up to twice as many connections as VUs.
   * On its own connection the request simply waits that turn (counted in `blocked`).
   */
  roundTrip(req: RoundTripRequest, lane?: number): Promise<RoundTripResult> {
    return new Promise<RoundTripResult>((resolve) => {
      const ex = new Exchange(req, resolve);
      const protocol = req.url.protocol;
      if (this.closed || (protocol !== 'http:' && protocol !== 'https:')) {
        ex.onError(Object.assign(new Error(this.closed ? 'the HTTP client is closed' : `unsupported protocol ${protocol}`), { code: 'ERR_INVALID_URL' }));
        return;
      }
      if (req.signal?.aborted) return ex.giveUp(abortReason(req.signal));
      const target = targetOf(req.url);
      const conn = lane !== undefined && protocol === 'http:' ? this.rawLane(target, lane) : null;
      if (conn && !conn.busy) {
        // A VU's own connection: its signal and deadline are watched through the connection, which
        // is registered once — not through per-request set entries, whose churn costs more here than
        // the whole parse of a response.
        if (req.signal && conn.watchedSignal !== req.signal) {
          inFlightFor(req.signal).add(conn);
          conn.watchedSignal = req.signal;
        }
        if (req.timeoutMs > 0) {
          if (req.timeoutMs < SWEEP_MS * 20) ex.timer = setTimeout(() => ex.giveUp(new Error('request timeout')), req.timeoutMs);
          else {
            ex.deadline = ex.t0 + req.timeoutMs;
            deadlines.watchConnection(conn);
          }
        }
        try {
          ex.head = req.body === null ? cachedHead(req.method, target, req.headers) : requestHead(req.method, target.path, target.host, req.headers, req.body);
        } catch (e) {
          ex.onError(e as Error);
          return;
        }
        ex.rawConn = conn;
        conn.send(ex);
        return;
      }
      if (req.signal) {
        ex.watchers = inFlightFor(req.signal);
        ex.watchers.add(ex);
      }
      if (req.timeoutMs > 0) {
        if (req.timeoutMs < SWEEP_MS * 20) ex.timer = setTimeout(() => ex.giveUp(new Error('request timeout')), req.timeoutMs);
        else deadlines.watch(ex, ex.t0 + req.timeoutMs);
      }
      let dispatcher: Dispatcher;
      const l = lane === undefined ? undefined : this.lane(target.origin, lane);
      if (l && !l.busy) {
        l.busy = true;
        ex.lane = l;
        dispatcher = l.client;
      } else {
        dispatcher = this.pool(target.origin);
      }
      dispatcher.dispatch(
        {
          path: target.path,
          method: req.method as Dispatcher.HttpMethod,
          headers: req.headers.length ? req.headers : NO_HEADERS,
          body: req.body,
          // Our own timer bounds the whole exchange (k6's timeout), so undici's per-phase ones are off.
          headersTimeout: 0,
          bodyTimeout: 0,
        },
        ex,
      );
    });
  }

  /** Open connections per origin, lanes and pool together (for diagnostics and tests). */
  connections(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [origin, pool] of this.pools) out[origin] = pool.stats.connected;
    for (const [origin, lanes] of this.lanes) {
      let n = 0;
      for (const l of lanes.values()) if (l.client.stats.connected) n++;
      out[origin] = (out[origin] ?? 0) + n;
    }
    for (const [origin, lanes] of this.rawLanes) {
      let n = 0;
      for (const c of lanes.values()) if (c.connected) n++;
      out[origin] = (out[origin] ?? 0) + n;
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all: Dispatcher[] = [...this.pools.values()];
    for (const lanes of this.lanes.values()) for (const l of lanes.values()) all.push(l.client);
    for (const lanes of this.rawLanes.values()) {
      for (const c of lanes.values()) {
        c.close();
        deadlines.forgetConnection(c);
      }
    }
    this.pools.clear();
    this.lanes.clear();
    this.rawLanes.clear();
    await Promise.all(all.map((d) => d.destroy()));
  }

  private dispatcherOptions(origin: string): Client.Options {
    const base = buildConnector({ timeout: this.options.connectTimeoutMs, keepAlive: true });
    return {
      pipelining: 1,
      keepAliveTimeout: this.options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(this.options.keepAliveTimeoutMs, 600_000),
      connect: timedConnector(base, origin.startsWith('https:')),
    };
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, { ...this.dispatcherOptions(origin), connections: this.options.connectionsPerOrigin });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  private rawLane(target: Target, id: number): Http1Connection {
    let lanes = this.rawLanes.get(target.origin);
    if (!lanes) this.rawLanes.set(target.origin, (lanes = new Map()));
    let c = lanes.get(id);
    if (!c) lanes.set(id, (c = new Http1Connection(target.hostname, target.port, this.options.laneKeepAliveTimeoutMs, this.options.connectTimeoutMs)));
    return c;
  }

  private lane(origin: string, id: number): Lane {
    let lanes = this.lanes.get(origin);
    if (!lanes) this.lanes.set(origin, (lanes = new Map()));
    let l = lanes.get(id);
    if (!l) lanes.set(id, (l = { client: new Client(origin, this.dispatcherOptions(origin)), busy: false }));
    return l;
  }
}

/** How often long timeouts are checked (ms): a timeout of T fires between T and T + SWEEP_MS. */
const SWEEP_MS = 50;

/**
 * Long timeouts (k6's default is 60 s) are checked by one sweeping interval rather than a timer
 * per request: a timer is an async resource, and with AsyncLocalStorage active (each VU's scope)
 * each costs a context copy — measurable at tens of thousands of requests per second. Timeouts
 * shorter than 20 sweeps get their own timer, so they stay precise.
 */
class DeadlineSweep {
  private readonly watched = new Set<Exchange>();
  /** VUs' raw connections: their current exchange's deadline is checked (registered once each). */
  private readonly connections = new Set<Http1Connection>();
  private interval: NodeJS.Timeout | null = null;

  watch(ex: Exchange, deadline: number): void {
    ex.deadline = deadline;
    this.watched.add(ex);
    this.start();
  }

  unwatch(ex: Exchange): void {
    this.watched.delete(ex);
  }

  watchConnection(conn: Http1Connection): void {
    if (!this.connections.has(conn)) this.connections.add(conn);
    this.start();
  }

  forgetConnection(conn: Http1Connection): void {
    this.connections.delete(conn);
  }

  private start(): void {
    if (!this.interval) {
      this.interval = setInterval(() => this.sweep(), SWEEP_MS);
      this.interval.unref();
    }
  }

  private sweep(): void {
    // Stopped here, not in unwatch: a lone VU would otherwise start and stop it on every request.
    if (this.watched.size === 0 && this.connections.size === 0 && this.interval) {
      clearInterval(this.interval);
      this.interval = null;
      return;
    }
    const now = performance.now();
    for (const ex of this.watched) if (ex.deadline <= now) ex.giveUp(new Error('request timeout'));
    for (const conn of this.connections) {
      const ex = conn.current as Exchange | null;
      if (ex && ex.deadline > 0 && ex.deadline <= now) ex.giveUp(new Error('request timeout'));
    }
  }
}

const deadlines = new DeadlineSweep();

/**
 * Exchanges in flight per signal. One listener per signal, not one per request: a signal may be
 * shared by every VU of a scenario, and an EventTarget with thousands of listeners is slow to
 * add to and remove from (and warns past ten).
 */
const inFlight = new WeakMap<AbortSignal, Set<Exchange | Http1Connection>>();

function inFlightFor(signal: AbortSignal): Set<Exchange | Http1Connection> {
  let set = inFlight.get(signal);
  if (!set) {
    const s = (set = new Set());
    inFlight.set(signal, s);
    signal.addEventListener('abort', () => {
      const reason = abortReason(signal);
      for (const item of [...s]) {
        // A connection stands for whatever exchange it carries now, if that one listens to this signal.
        const ex = item instanceof Http1Connection ? (item.current as Exchange | null) : item;
        if (ex && ex.req.signal === signal) ex.giveUp(reason);
      }
    }, { once: true });
  }
  return set;
}

/**
 * Request bytes of body-less requests, per header list (k6/http shares one list between plain
 * requests) and method + URL: a script requests the same few URLs over and over. Bounded: a full
 * map is dropped whole.
 */
const heads = new WeakMap<string[], Map<string, Buffer>>();
const HEADS_MAX = 2048;

function cachedHead(method: string, target: Target, headers: string[]): Buffer {
  let byUrl = heads.get(headers);
  if (!byUrl) heads.set(headers, (byUrl = new Map()));
  const key = method + ' ' + target.origin + target.path;
  let head = byUrl.get(key);
  if (!head) {
    head = requestHead(method, target.path, target.host, headers, null);
    if (byUrl.size >= HEADS_MAX) byUrl.clear();
    byUrl.set(key, head);
  }
  return head;
}

interface Target {
  origin: string;
  path: string;
  /** The Host header: host[:port] as in the URL. */
  host: string;
  /** The address to connect to (IPv6 without brackets). */
  hostname: string;
  port: number;
}

/** A URL's origin and path, computed once per URL object (URL's getters build new strings each call). */
const targets = new WeakMap<URL, Target>();

function targetOf(url: URL): Target {
  let t = targets.get(url);
  if (!t) {
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    targets.set(url, (t = { origin: url.origin, path: url.pathname + url.search, host: url.host, hostname, port }));
  }
  return t;
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new DOMException(typeof r === 'string' ? r : 'This operation was aborted', 'AbortError');
}
