// The one registry of HTTP errors: every sim/ code and every server code maps to a v1 `error_type`,
// an HTTP status and a default message. Tests match on `error_type` and status, never on wording.
//
// | error_type                      | status | raised for                                                            |
// |---------------------------------|--------|-----------------------------------------------------------------------|
// | APINotFoundError                | 404    | unknown object (SG_ERR_NOT_FOUND) and unknown route                    |
// | APIInvalidParametersError       | 400    | missing / wrong-typed / out-of-range params, malformed ids, malformed  |
// |                                 |        | JSON / form / multipart bodies, unsupported Content-Type, bad images,  |
// |                                 |        | oversized uploads and bodies, malformed URLs, taken usernames          |
// | APIRequiresAuthenticationError  | 401    | no access_token (query) and no `Authorization: Bearer` header; /_sim  |
// |                                 |        | without the admin token (SG_HTTP_ADMIN_AUTH_REQUIRED)                  |
// | OAuthAccessTokenException       | 400    | an access token that names no session (v1 answered 400, not 401)       |
// | OAuthException                  | 400    | POST /oauth/access_token: wrong username/password, bad grant_type      |
// | APINotAllowedError              | 403    | private content, blocked users, other people's media and comments      |
// | OAuthRateLimitException         | 429    | more requests in the hourly window than the limit allows               |
// | OAuthParameterException         | 400    | /v1/subscriptions without client_id and client_secret                 |
// | OAuthClientException            | 400    | an unknown or revoked client_id, or a wrong client_secret              |
// | APISubscriptionError            | 400    | a callback not allowed, unreachable, or not echoing hub.challenge      |
// | APIError                        | 503    | overload: SG_ERR_POOL_EXHAUSTED, SG_ERR_QUEUE_FULL, SG_ERR_NODE_DOWN,   |
// |                                 |        | SG_ERR_BUDGET_EXHAUSTED, SG_ERR_SHARD_MOVE, SG_ERR_BACKEND_UNREACHABLE  |
// | APIError                        | 409    | SG_ERR_BUSY: a second POST /_sim/seed while one runs; POST /_sim/reset  |
// |                                 |        | on a server with a --data-dir (SG_HTTP_RESET_REFUSED)                  |
// |                                 |        | POST /_sim/celebrity/post with no seeded account at the rank asked for |
// |                                 |        | (SG_HTTP_NO_ACCOUNT)                                                   |
// | APIError                        | 501    | POST /_sim/reset on an app built without a host (SG_HTTP_RESET_UNAVAILABLE) |
// | APIError                        | 500    | real bugs only (anything unmapped); always logged                      |

import { ERROR_CODES, isSimError, type ErrorCode } from '../sim/engine/errors.ts';

export type V1ErrorType =
  | 'APINotFoundError'
  | 'APIInvalidParametersError'
  | 'APIRequiresAuthenticationError'
  | 'OAuthAccessTokenException'
  | 'OAuthException'
  | 'APINotAllowedError'
  | 'OAuthRateLimitException'
  | 'OAuthParameterException'
  | 'OAuthClientException'
  | 'APISubscriptionError'
  | 'APIError';

interface ErrorSpec {
  type: V1ErrorType;
  status: number;
  message: string;
}

const spec = (type: V1ErrorType, status: number, message: string): ErrorSpec => ({ type, status, message });

/** Codes raised by the HTTP layer itself. */
export const SERVER_ERRORS = {
  SG_HTTP_NOT_FOUND: spec('APINotFoundError', 404, 'This endpoint does not exist'),
  SG_HTTP_INVALID_PARAM: spec('APIInvalidParametersError', 400, 'A parameter is missing or invalid'),
  SG_HTTP_BAD_BODY: spec('APIInvalidParametersError', 400, 'The request body could not be parsed'),
  SG_HTTP_UNSUPPORTED_MEDIA_TYPE: spec('APIInvalidParametersError', 400, 'This Content-Type is not accepted here'),
  SG_HTTP_BAD_URL: spec('APIInvalidParametersError', 400, 'The URL is malformed'),
  SG_HTTP_BAD_UPLOAD: spec('APIInvalidParametersError', 400, 'The upload is not a valid multipart/form-data body with a JPEG or PNG `photo`'),
  SG_HTTP_UPLOAD_TOO_LARGE: spec('APIInvalidParametersError', 400, 'The upload is larger than allowed'),
  SG_HTTP_BODY_TOO_LARGE: spec('APIInvalidParametersError', 400, 'The request body is larger than allowed'),
  SG_HTTP_AUTH_REQUIRED: spec('APIRequiresAuthenticationError', 401, 'An access_token is required'),
  SG_HTTP_ADMIN_AUTH_REQUIRED: spec('APIRequiresAuthenticationError', 401, 'The admin API (/_sim) requires Authorization: Bearer <admin token>; scalegram serve prints it at start'),
  SG_HTTP_CLIENT_REQUIRED: spec('OAuthParameterException', 400, 'Missing client_id or client_secret parameter'),
  SG_HTTP_INVALID_CLIENT: spec('OAuthClientException', 400, 'No matching client found (an unknown client_id, a revoked client or a wrong client_secret)'),
  SG_HTTP_INVALID_TOKEN: spec('OAuthAccessTokenException', 400, 'The access_token provided is invalid'),
  SG_HTTP_BAD_GRANT: spec('OAuthException', 400, 'Only grant_type=password is supported'),
  SG_HTTP_NOT_ALLOWED: spec('APINotAllowedError', 403, 'You cannot view or change this resource'),
  SG_HTTP_RATE_LIMITED: spec('OAuthRateLimitException', 429, 'The maximum number of requests per hour has been exceeded'),
  SG_HTTP_RESET_UNAVAILABLE: spec('APIError', 501, 'This server cannot be reset: only one started by scalegram serve or scalegram run replaces its service'),
  SG_HTTP_RESET_REFUSED: spec('APIError', 409, 'This server keeps its data in a --data-dir: a reset would discard it; start another server with a new --data-dir instead'),
  SG_HTTP_NO_ACCOUNT: spec('APIError', 409, 'No seeded account has this rank: seed a population first (POST /_sim/seed)'),
  SG_HTTP_INTERNAL: spec('APIError', 500, 'Internal error'),
} as const satisfies Record<string, ErrorSpec>;

export type ServerErrorCode = keyof typeof SERVER_ERRORS;

/** Every sim/ code, mapped once. `satisfies Record<ErrorCode, …>` fails the build when sim adds a code. */
export const SIM_ERRORS = {
  SG_ERR_NOT_FOUND: spec('APINotFoundError', 404, ERROR_CODES.SG_ERR_NOT_FOUND),
  SG_ERR_INVALID_PARAM: spec('APIInvalidParametersError', 400, ERROR_CODES.SG_ERR_INVALID_PARAM),
  SG_ERR_USERNAME_TAKEN: spec('APIInvalidParametersError', 400, ERROR_CODES.SG_ERR_USERNAME_TAKEN),
  SG_ERR_INVALID_CREDENTIALS: spec('OAuthException', 400, ERROR_CODES.SG_ERR_INVALID_CREDENTIALS),
  SG_ERR_NOT_ALLOWED: spec('APINotAllowedError', 403, ERROR_CODES.SG_ERR_NOT_ALLOWED),
  SG_ERR_BAD_IMAGE: spec('APIInvalidParametersError', 400, ERROR_CODES.SG_ERR_BAD_IMAGE),
  SG_ERR_UPLOAD_TOO_LARGE: spec('APIInvalidParametersError', 400, ERROR_CODES.SG_ERR_UPLOAD_TOO_LARGE),
  SG_ERR_POOL_EXHAUSTED: spec('APIError', 503, ERROR_CODES.SG_ERR_POOL_EXHAUSTED),
  SG_ERR_QUEUE_FULL: spec('APIError', 503, ERROR_CODES.SG_ERR_QUEUE_FULL),
  SG_ERR_NODE_DOWN: spec('APIError', 503, ERROR_CODES.SG_ERR_NODE_DOWN),
  SG_ERR_BUDGET_EXHAUSTED: spec('APIError', 503, ERROR_CODES.SG_ERR_BUDGET_EXHAUSTED),
  SG_ERR_SHARD_MOVE: spec('APIError', 503, ERROR_CODES.SG_ERR_SHARD_MOVE),
  SG_ERR_BACKEND_UNREACHABLE: spec('APIError', 503, ERROR_CODES.SG_ERR_BACKEND_UNREACHABLE),
  SG_ERR_SUBSCRIPTION: spec('APISubscriptionError', 400, ERROR_CODES.SG_ERR_SUBSCRIPTION),
  // A second seeding while one runs (they run one at a time): the request is fine, just not now.
  SG_ERR_BUSY: spec('APIError', 409, ERROR_CODES.SG_ERR_BUSY),
  // A bad topology config is a bug of whoever built the server, never of the request.
  SG_ERR_CONFIG_INVALID: spec('APIError', 500, ERROR_CODES.SG_ERR_CONFIG_INVALID),
  // Calibration profiles are read by the simulator's command line only, never by the server.
  SG_ERR_CALIBRATION_INVALID: spec('APIError', 500, ERROR_CODES.SG_ERR_CALIBRATION_INVALID),
} as const satisfies Record<ErrorCode, ErrorSpec>;

/** An expected HTTP refusal raised by server code. */
export class ApiError extends Error {
  readonly code: ServerErrorCode;
  readonly statusCode: number;
  readonly errorType: V1ErrorType;
  constructor(code: ServerErrorCode, message?: string) {
    const s = SERVER_ERRORS[code];
    super(message ?? s.message);
    this.name = 'ApiError';
    this.code = code;
    this.statusCode = s.status;
    this.errorType = s.type;
  }
}

export function apiError(code: ServerErrorCode, message?: string): ApiError {
  return new ApiError(code, message);
}

export function invalidParam(message: string): ApiError {
  return new ApiError('SG_HTTP_INVALID_PARAM', message);
}

export interface V1Error {
  status: number;
  type: V1ErrorType;
  message: string;
  /** True for a bug: answered with 500 and logged. */
  isBug: boolean;
}

/** Fastify and plugin codes whose status is not a good guide, mapped explicitly. */
const FRAMEWORK_CODES: Record<string, ServerErrorCode> = {
  FST_ERR_VALIDATION: 'SG_HTTP_INVALID_PARAM',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'SG_HTTP_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'SG_HTTP_BAD_BODY',
  FST_ERR_CTP_BODY_TOO_LARGE: 'SG_HTTP_BODY_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'SG_HTTP_BAD_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'SG_HTTP_BAD_BODY',
  FST_ERR_BAD_URL: 'SG_HTTP_BAD_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'SG_HTTP_BAD_URL',
  FST_REQ_FILE_TOO_LARGE: 'SG_HTTP_UPLOAD_TOO_LARGE',
  FST_PARTS_LIMIT: 'SG_HTTP_BAD_UPLOAD',
  FST_FILES_LIMIT: 'SG_HTTP_BAD_UPLOAD',
  FST_FIELDS_LIMIT: 'SG_HTTP_BAD_UPLOAD',
  FST_PROTO_VIOLATION: 'SG_HTTP_BAD_UPLOAD',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'SG_HTTP_BAD_UPLOAD',
  FST_INVALID_JSON_FIELD_ERROR: 'SG_HTTP_BAD_UPLOAD',
  FST_MP_PREMATURE_CLOSE: 'SG_HTTP_BAD_UPLOAD',
};

function fromSpec(s: ErrorSpec, message: string | undefined, isBug = false): V1Error {
  return { status: s.status, type: s.type, message: message || s.message, isBug };
}

/** Maps anything thrown while answering a request to its v1 error. */
export function toV1Error(err: unknown): V1Error {
  if (err instanceof ApiError) return fromSpec(SERVER_ERRORS[err.code], err.message);
  if (isSimError(err)) {
    const s = SIM_ERRORS[err.code];
    return fromSpec(s, err.message, s.status === 500);
  }
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown; message?: unknown; validation?: unknown };
    const message = typeof e.message === 'string' ? e.message : undefined;
    if (typeof e.code === 'string' && Object.hasOwn(FRAMEWORK_CODES, e.code)) {
      const code = FRAMEWORK_CODES[e.code]!;
      // Validation messages name the field ("querystring/count must be >= 1"): keep them.
      return fromSpec(SERVER_ERRORS[code], code === 'SG_HTTP_INVALID_PARAM' || code === 'SG_HTTP_BAD_BODY' ? message : undefined);
    }
    if (e.validation !== undefined) return fromSpec(SERVER_ERRORS.SG_HTTP_INVALID_PARAM, message);
    // Other framework and parser errors carry a 4xx status (a JSON SyntaxError is 400): the
    // request was at fault, so it gets the v1 type for that status, never a 5xx.
    const status = typeof e.statusCode === 'number' ? e.statusCode : 0;
    if (status >= 400 && status < 500) {
      if (status === 401) return fromSpec(SERVER_ERRORS.SG_HTTP_AUTH_REQUIRED, undefined);
      if (status === 403) return fromSpec(SERVER_ERRORS.SG_HTTP_NOT_ALLOWED, undefined);
      if (status === 404) return fromSpec(SERVER_ERRORS.SG_HTTP_NOT_FOUND, undefined);
      if (status === 429) return fromSpec(SERVER_ERRORS.SG_HTTP_RATE_LIMITED, undefined);
      return fromSpec(SERVER_ERRORS.SG_HTTP_BAD_BODY, message);
    }
  }
  return fromSpec(SERVER_ERRORS.SG_HTTP_INTERNAL, undefined, true);
}
