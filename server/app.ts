// The HTTP server, built by a function and listened on elsewhere (tests call app.inject()).
// Here: Fastify options, body parsers, the hooks every request passes (rate limit, metrics), the
// error and not-found handlers that keep every answer in the v1 envelope, and the route modules.

import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import { runInScope } from '../sim/engine/actor-context.ts';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerFactory, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { parse as parseForm } from 'node:querystring';
import type { CounterHandle, HistogramHandle, Metrics } from '../sim/observability/metrics.ts';
import { WorkCounts, type WorkMeter } from '../sim/observability/work-meter.ts';
import { loadAssets } from './assets.ts';
import { ConnectionGuard, resolveConnectionLimits, type ConnectionBook, type ConnectionLimits } from './connection-guard.ts';
import type { ServerContext, ServerTopology, ServiceControl, TierView } from './context.ts';
import { errorBody } from './envelope.ts';
import { apiError, SERVER_ERRORS, toV1Error, type V1Error } from './errors.ts';
import { DOCS_PREFIX, registerOpenApi } from './openapi.ts';
import { requireAdminForSim } from './admin-auth.ts';
import { installTierRules } from './tier/admin-rules.ts';
import { finiteKeyword } from './params.ts';
import { createRateLimiter } from './rate-limit.ts';
import { accountRoutes } from './routes/accounts.ts';
import { activityRoutes } from './routes/activity.ts';
import { cdnRoutes } from './routes/cdn.ts';
import { commentRoutes } from './routes/comments.ts';
import { likeRoutes } from './routes/likes.ts';
import { locationRoutes } from './routes/locations.ts';
import { mediaRoutes } from './routes/media.ts';
import { oauthRoutes } from './routes/oauth.ts';
import { opsRoutes } from './routes/ops.ts';
import { clientRoutes } from './routes/clients.ts';
import { relationshipRoutes } from './routes/relationships.ts';
import { subscriptionRoutes } from './routes/subscriptions.ts';
import { simRoutes } from './routes/sim.ts';
import { tagRoutes } from './routes/tags.ts';
import { userRoutes } from './routes/users.ts';

export interface BuildAppOptions {
  topology: ServerTopology;
  /** Requests per access token (or client IP) per hour, as Instagram's v1 had it; 0 = unlimited. Default 5000. */
  rateLimitPerHour?: number;
  /** Absolute base URL for links (media links, image URLs, next_url); default: the request's protocol and Host. */
  publicUrl?: string;
  /** Fastify's logger (logs every request when on). Default off. */
  logger?: boolean;
  /**
   * The bearer token the admin API (/_sim/*) requires: at least 16 printable characters, from a
   * CSPRNG (sim/domain/credentials.ts randomSecret) unless the operator chose it.
   */
  adminToken: string;
  /**
   * Header, request and idle timeouts and the per-address connection cap (connection-guard.ts);
   * unset fields take DEFAULT_CONNECTION_LIMITS, a public service's. A server whose clients all
   * share one address (the runner's thousands of VUs on 127.0.0.1) must lift the cap.
   */
  connections?: Partial<ConnectionLimits>;
  /**
   * Addresses real-time subscription callbacks may reach (CIDR ranges, addresses, host names
   * resolved once at start); default loopback only (sim/domain/callbacks.ts).
   */
  callbackAllow?: readonly string[];
  /** The server the app answers on, when another owns the listening one (server/service-host.ts); default Fastify's own. */
  serverFactory?: FastifyServerFactory;
  /** The connection guard's book of open connections, when several apps serve one listening socket in turn (server/service-host.ts). */
  connectionBook?: ConnectionBook;
  /** What POST /_sim/reset does (server/service-host.ts); without it the route answers that this server cannot be reset. */
  control?: ServiceControl;
  /** The tier of server processes this app serves in (serve --workers N; server/tier/). */
  tier?: TierView;
}

/** Bytes accepted in a JSON or form body. */
const BODY_LIMIT_BYTES = 1024 * 1024;
/** Longest path parameter; longer ones are a malformed URL (400). */
const MAX_PARAM_CHARS = 500;

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const rateLimitPerHour = opts.rateLimitPerHour ?? 5000;
  const adminToken = opts.adminToken;
  if (!Number.isInteger(rateLimitPerHour) || rateLimitPerHour < 0) throw new RangeError(`rateLimitPerHour must be an integer ≥ 0 (got ${rateLimitPerHour})`);
  const ctx: ServerContext = Object.freeze({
    topology: opts.topology,
    store: opts.topology.store,
    publicUrl: opts.publicUrl ? normalizeBase(opts.publicUrl) : null,
    rateLimitPerHour,
    startedMs: opts.topology.clock.nowMs(),
    control: opts.control ?? null,
    tier: opts.tier ?? null,
  });
  const limiter = createRateLimiter(ctx);
  const guard = new ConnectionGuard(resolveConnectionLimits(opts.connections), ctx.topology.metrics, opts.connectionBook);
  if (opts.callbackAllow !== undefined) await opts.topology.subscriptions.allowCallbacks(opts.callbackAllow);
  const logger = opts.logger ?? false;
  // Set once the metrics are installed; framework errors bypass the onResponse hooks.
  let recordUnmatched: ((request: FastifyRequest, reply: FastifyReply) => void) | null = null;

  const app = Fastify({
    // When on, request logs show paths without the query: it may hold an access token.
    logger: logger ? { serializers: { req: (req: FastifyRequest) => ({ method: req.method, path: req.url.split('?')[0], remoteAddress: req.ip }) } } : false,
    bodyLimit: BODY_LIMIT_BYTES,
    rewriteUrl: stripJsonSuffix,
    ajv: { plugins: [finiteKeyword] },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_CHARS },
    // Fastify sets these two on the server itself (its defaults: 72 s idle, no request deadline).
    keepAliveTimeout: guard.limits.idleTimeoutMs,
    requestTimeout: guard.limits.requestTimeoutMs,
    http: guard.serverOptions(),
    ...(opts.serverFactory ? { serverFactory: opts.serverFactory } : {}),
    // Malformed URLs (bad percent-encoding, over-long params) get the envelope too.
    frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
      limiter.takeAnonymous(request, reply);
      const e = toV1Error(error);
      reply.code(e.status).send(errorBody(e));
      recordUnmatched?.(request, reply);
    },
    // Requests Node's HTTP parser rejects (bad request line, oversized headers) never reach a
    // route: they still get the envelope and the rate-limit headers.
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex) {
      const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? guard.requestTimedOut(socket as Socket) : null;
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (timedOut && !timedOut.canAnswer) {
        socket.destroy(err);
        return;
      }
      const status = timedOut ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const message = timedOut
        ? `The request ${timedOut.reason === 'body_timeout' ? 'body' : 'headers'} did not arrive in time`
        : status === 431 ? 'The request headers are too large' : 'The request is not valid HTTP';
      const body = JSON.stringify(errorBody({ status, type: 'APIInvalidParametersError', message, isBug: false }));
      const rl = limiter.takeIp((socket as Duplex & { remoteAddress?: string }).remoteAddress ?? '');
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
            `X-Ratelimit-Limit: ${rl.limit}\r\nX-Ratelimit-Remaining: ${rl.remaining}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy(err);
    },
  });

  guard.attach(app.server);
  const assets = await loadAssets();

  // Every request: the rate limit first (so refusals are cheap), metrics on the way out.
  app.decorateRequest('viewerId', '');
  app.decorateRequest('tokenLookup', null);
  app.decorateRequest('workCounts', null);
  // Everything a request does is counted in its route's work (sim/observability/work-meter.ts; the
  // admin API's are not), from its first hook on: the token lookup, and requests refused before
  // the handler (401, 400, 429) too. A callback hook that calls done() inside the scope is what
  // carries the scope into the later hooks and the handler.
  const work = ctx.topology.work;
  app.addHook('onRequest', (request, _reply, done) => {
    const url = request.routeOptions.url;
    // Counts of its own, added to its route's (and its outcome's) when it is answered.
    const counts = url === undefined || url.startsWith('/_sim') ? null : new WorkCounts();
    request.workCounts = counts;
    if (counts) runInScope({ actor: undefined, work: counts }, done);
    else done();
  });
  app.addHook('onRequest', requireAdminForSim(adminToken, ctx.topology.metrics));
  if (ctx.tier) installTierRules(app, ctx.tier);
  app.addHook('onRequest', limiter.hook);
  // The handler runs as the request's user (read-your-writes routing, hotspot attribution), still
  // counting in its route's work; setting the scope from inside an async hook would not survive
  // into the handler.
  app.addHook('preHandler', (request, _reply, done) => {
    if (request.viewerId) runInScope({ actor: request.viewerId, work: request.workCounts }, done);
    else done();
  });
  recordUnmatched = installMetrics(app, ctx.topology.metrics, work);

  // Bodies: JSON (built in), forms, multipart (read by POST /v1/media only), and a body without a
  // Content-Type read as a form, as OAuth clients send it. Any other type is refused with 400.
  await app.register(formbody, { bodyLimit: BODY_LIMIT_BYTES });
  const blobs = ctx.topology.config.blobs;
  await app.register(multipart, {
    limits: { fileSize: blobs.maxUploadBytes, files: 1, fields: 16, fieldSize: 16 * 1024, parts: 24, headerPairs: 64 },
  });
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, (request, body, done) => {
    if (request.headers['content-type'] !== undefined) {
      done(apiError('SG_HTTP_UNSUPPORTED_MEDIA_TYPE', `Content-Type ${request.headers['content-type']} is not accepted; send JSON, a form or multipart/form-data`), undefined);
      return;
    }
    done(null, { ...parseForm(body as string) });
  });

  app.setErrorHandler((err, request, reply) => {
    const e = toV1Error(err);
    if (e.isBug) logBug(logger, request, err);
    sendError(reply, e);
  });
  const notFound = SERVER_ERRORS.SG_HTTP_NOT_FOUND;
  app.setNotFoundHandler((request, reply) => {
    // Built without an Error (no stack to capture): scanners make 404s a hot path.
    const path = request.url.split('?')[0]!.slice(0, 200);
    sendError(reply, { status: notFound.status, type: notFound.type, message: `No endpoint answers ${request.method} ${path}`, isBug: false });
  });

  await registerOpenApi(app);

  accountRoutes(app, ctx);
  oauthRoutes(app, ctx);
  userRoutes(app, ctx);
  relationshipRoutes(app, ctx);
  mediaRoutes(app, ctx);
  likeRoutes(app, ctx);
  commentRoutes(app, ctx);
  tagRoutes(app, ctx);
  locationRoutes(app, ctx);
  activityRoutes(app, ctx);
  subscriptionRoutes(app, ctx);
  cdnRoutes(app, ctx, assets);
  opsRoutes(app, ctx, assets);
  simRoutes(app, ctx);
  clientRoutes(app, ctx);

  await app.ready();
  return app;
}

function normalizeBase(url: string): string {
  const u = new URL(url);
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

function sendError(reply: FastifyReply, e: V1Error): void {
  // A route that had started an image answer must not label the error as an image.
  reply.removeHeader('etag');
  reply.removeHeader('cache-control');
  reply.type('application/json; charset=utf-8');
  reply.code(e.status).send(errorBody(e));
}

function logBug(logger: boolean, request: FastifyRequest, err: unknown): void {
  if (logger) {
    request.log.error({ err, path: request.url.split('?')[0] }, 'unhandled error answered with 500');
  } else {
    // Bugs are never silent, even with the request logger off.
    // The path only: the query may hold an access token.
    console.error(`[scalegram] 500 on ${request.method} ${request.url.split('?')[0]}:`, err);
  }
}

/**
 * The v1 `.json` suffix, once for every path: `/v1/users/self.json?x` → `/v1/users/self?x`.
 * Swagger UI's own `/docs/*` and image keys under `/cdn/` are left alone.
 */
export function stripJsonSuffix(req: IncomingMessage): string {
  const url = req.url ?? '/';
  let end = url.indexOf('?');
  if (end === -1) end = url.length;
  if (end > 5 && url.startsWith('.json', end - 5) && !url.startsWith(DOCS_PREFIX) && !url.startsWith('/cdn/')) {
    return url.slice(0, end - 5) + url.slice(end);
  }
  return url;
}

const kMetricsHook = Symbol('scalegram.metricsHook');

/**
 * http_requests{route,method,status} and http_req_duration_ms{route} for every response, where
 * route is the route pattern (`/v1/users/:id/media/recent`) or "unmatched": each route gets its own
 * onResponse hook with its label and cached metric handles, so recording allocates nothing.
 */
function installMetrics(app: FastifyInstance, metrics: Metrics, meter: WorkMeter): (request: FastifyRequest, reply: FastifyReply) => void {
  metrics.describe('http_requests', 'HTTP responses by route pattern, method and status');
  metrics.describe('http_req_duration_ms', 'HTTP response time by route pattern (from request to response)');

  function recorder(route: string) {
    const counters = new Map<string, Map<number, CounterHandle>>();
    let histogram: HistogramHandle | null = null;
    return function record(request: FastifyRequest, reply: FastifyReply): void {
      const method = request.method;
      const status = reply.statusCode;
      const work = request.workCounts;
      if (work) {
        work.count = 1;
        if (status >= 400) work.failed = 1;
        const length = Number(reply.getHeader('content-length'));
        if (length > 0) work.responseBytes += length;
        meter.finishRequest(method + ' ' + route, work, reply.elapsedTime);
      }
      let byStatus = counters.get(method);
      if (!byStatus) counters.set(method, (byStatus = new Map()));
      let c = byStatus.get(status);
      if (!c) byStatus.set(status, (c = metrics.counter('http_requests', { route, method, status })));
      c.inc();
      histogram ??= metrics.histogram('http_req_duration_ms', { route });
      histogram.observeMs(reply.elapsedTime);
    };
  }

  app.addHook('onRoute', (route: RouteOptions) => {
    const existing = route.onResponse === undefined ? [] : Array.isArray(route.onResponse) ? route.onResponse : [route.onResponse];
    if (existing.some((h) => (h as unknown as Record<symbol, unknown>)[kMetricsHook])) return;
    const rec = recorder(route.url);
    const hook = (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      rec(request, reply);
      done();
    };
    Object.defineProperty(hook, kMetricsHook, { value: true });
    route.onResponse = [...existing, hook] as RouteOptions['onResponse'];
  });

  const unmatched = recorder('unmatched');
  app.addHook('onResponse', (request, reply, done) => {
    if (request.is404) unmatched(request, reply);
    done();
  });
  return unmatched;
}
