// What keeps a client from holding the server's connections without finishing its requests: header,
// request and idle timeouts, a cap on concurrent connections per client address, and a count of
// every connection the server closed for one of these reasons (`http_connections_closed{reason}`).

import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { CounterHandle, Metrics } from '../sim/observability/metrics.ts';

export interface ConnectionLimits {
  /** A request's header section must be complete this long (ms) after its first byte, or after the connection opened; else 408. 0 = no limit. */
  headersTimeoutMs: number;
  /** The whole request, headers and body, must have arrived this long (ms) after its first byte; else 408. 0 = no limit. */
  requestTimeoutMs: number;
  /**
   * A kept-alive connection with no request for this long (ms) is closed; announced to clients as
   * `Keep-Alive: timeout=<whole seconds>` (Node closes one second after the announced time, so a
   * client that honours the hint closes first). 0 = kept forever.
   */
  idleTimeoutMs: number;
  /** Concurrent connections per client address; a connection over it is reset at once. 0 = no cap. */
  maxConnectionsPerAddress: number;
}

/**
 * A public service's defaults. 10 s for a header section that a client sends in one packet; 60 s
 * for a whole request (a 1 MiB JSON or form body needs 17 KiB/s, a photo upload at the 8 MiB
 * default limit 140 KiB/s); 5 s idle (Node's and Apache's default; nginx keeps 75 s); 64
 * connections per address, ten times what a browser opens to one host, with room for a few
 * clients behind one NAT.
 */
export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 5_000,
  maxConnectionsPerAddress: 64,
});

/** Node's timers hold at most 2^31 − 1 ms (24.8 days); a longer timeout would fire at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export const CLOSE_REASONS = ['header_timeout', 'body_timeout', 'idle_timeout', 'address_cap'] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

/** The limits with defaults filled in, checked once and frozen; a RangeError names the bad one. */
export function resolveConnectionLimits(given: Partial<ConnectionLimits> = {}): Readonly<ConnectionLimits> {
  const limits = { ...DEFAULT_CONNECTION_LIMITS };
  for (const key of Object.keys(DEFAULT_CONNECTION_LIMITS) as Array<keyof ConnectionLimits>) {
    const v = given[key];
    if (v === undefined) continue;
    const max = key === 'maxConnectionsPerAddress' ? Number.MAX_SAFE_INTEGER : MAX_TIMEOUT_MS;
    if (!Number.isSafeInteger(v) || v < 0 || v > max) throw new RangeError(`${key} must be an integer from 0 to ${max} (got ${v})`);
    limits[key] = v;
  }
  // Node refuses a header deadline later than the whole request's.
  if (limits.requestTimeoutMs > 0 && limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError(`headersTimeoutMs (${limits.headersTimeoutMs}) must not exceed requestTimeoutMs (${limits.requestTimeoutMs})`);
  }
  return Object.freeze(limits);
}

/**
 * Node checks the header and request deadlines on a timer (30 s by default, which would let a 10 s
 * deadline run to 40 s): a tenth of the shorter deadline keeps the overrun within 10%, at most 1 s.
 */
function checkingIntervalMs(limits: ConnectionLimits): number {
  const deadlines = [limits.headersTimeoutMs, limits.requestTimeoutMs].filter((ms) => ms > 0);
  if (deadlines.length === 0) return 1000;
  return Math.min(1000, Math.max(10, Math.floor(Math.min(...deadlines) / 10)));
}

/** What a connection guard knows of the open connections (see the constructor). */
export interface ConnectionBook {
  readonly openPerAddress: Map<string, number>;
  readonly current: WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>;
}

export function newConnectionBook(): ConnectionBook {
  return { openPerAddress: new Map(), current: new WeakMap() };
}

export class ConnectionGuard {
  private readonly closed: Record<CloseReason, CounterHandle>;
  private readonly openPerAddress: Map<string, number>;
  /** The last request dispatched on each socket and its response, to tell a header from a body timeout. */
  private readonly current: WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>;

  /**
   * `book`: the open connections per address and the last request per socket, shared by the guards
   * of the apps that serve one listening socket in turn (server/service-host.ts), so that a new app
   * counts the connections an older one accepted; default a book of its own.
   */
  constructor(
    readonly limits: Readonly<ConnectionLimits>,
    metrics: Metrics,
    book: ConnectionBook = newConnectionBook(),
  ) {
    this.openPerAddress = book.openPerAddress;
    this.current = book.current;
    metrics.describe(
      'http_connections_closed',
      'Connections the server closed by itself, by reason: header_timeout and body_timeout (answered 408 when an answer was still possible), idle_timeout (keep-alive), address_cap (over the per-address cap, reset at once)',
    );
    // Created now so that every reason shows in /metrics, at 0, before it first happens.
    this.closed = Object.fromEntries(CLOSE_REASONS.map((reason) => [reason, metrics.counter('http_connections_closed', { reason })])) as Record<CloseReason, CounterHandle>;
  }

  /** Options for `http.createServer` (Fastify's `http` option). */
  serverOptions(): ServerOptions {
    return {
      headersTimeout: this.limits.headersTimeoutMs,
      requestTimeout: this.limits.requestTimeoutMs,
      keepAliveTimeout: this.limits.idleTimeoutMs,
      connectionsCheckingInterval: checkingIntervalMs(this.limits),
    };
  }

  /** Installs the idle timeout, the per-address cap and the bookkeeping on a server before it listens. */
  attach(server: Server): void {
    // Fastify reads 0 as "its default" (72 s) and sets these after creating the server: set again.
    server.keepAliveTimeout = this.limits.idleTimeoutMs;
    server.requestTimeout = this.limits.requestTimeoutMs;
    server.headersTimeout = this.limits.headersTimeoutMs;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.current.set(req.socket, { req, res });
    });
    // Socket inactivity timeouts: the server sets none (Fastify's connectionTimeout stays 0) except
    // the keep-alive one Node arms once a response is finished. A listener here makes closing ours.
    server.on('timeout', (socket: Socket) => {
      const at = this.current.get(socket);
      if (!at || at.res.writableFinished) this.closed.idle_timeout.inc();
      socket.destroy();
    });
    const cap = this.limits.maxConnectionsPerAddress;
    if (cap > 0) {
      server.on('connection', (socket: Socket) => {
        const address = socket.remoteAddress;
        if (address === undefined) return; // already gone
        const open = this.openPerAddress.get(address) ?? 0;
        if (open >= cap) {
          this.closed.address_cap.inc();
          // A reset rather than a close: no TIME_WAIT is left on the server for a flood of them.
          socket.resetAndDestroy();
          return;
        }
        this.openPerAddress.set(address, open + 1);
        socket.once('close', () => {
          const n = this.openPerAddress.get(address)! - 1;
          if (n === 0) this.openPerAddress.delete(address);
          else this.openPerAddress.set(address, n);
        });
      });
    }
  }

  /**
   * Node says a request missed its deadline (ERR_HTTP_REQUEST_TIMEOUT, for both deadlines): counts
   * it, and says whether a 408 may still be written (not when an answer to this socket's request
   * has started: bytes after it would corrupt what the client reads).
   */
  requestTimedOut(socket: Socket): { reason: CloseReason; canAnswer: boolean } {
    const at = this.current.get(socket);
    // Node hands a request to the app once its header section is complete: a request seen here and
    // not complete is waiting for its body.
    const inBody = at !== undefined && !at.req.complete;
    const reason: CloseReason = inBody ? 'body_timeout' : 'header_timeout';
    this.closed[reason].inc();
    const answering = at !== undefined && at.res.headersSent && (inBody || !at.res.writableFinished);
    return { reason, canAnswer: !answering };
  }
}
