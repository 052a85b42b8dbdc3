// The one registry of sim/ error codes. Callers and tests match on `code`, never on wording;
// the HTTP layer maps each code to a v1 `error_type` and status.

export class SimError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'SimError';
    this.code = code;
    this.details = details;
  }
}

export const ERROR_CODES = {
  SG_ERR_CONFIG_INVALID: 'The topology configuration is invalid',
  SG_ERR_NOT_FOUND: 'The requested object does not exist',
  SG_ERR_INVALID_PARAM: 'A parameter is missing or invalid',
  SG_ERR_USERNAME_TAKEN: 'That username is already taken',
  SG_ERR_INVALID_CREDENTIALS: 'The username or password is wrong',
  SG_ERR_NOT_ALLOWED: 'The viewer may not see or change this object',
  SG_ERR_POOL_EXHAUSTED: 'A connection pool queue overflowed its budget',
  SG_ERR_QUEUE_FULL: 'The job queue overflowed its budget',
  SG_ERR_NODE_DOWN: 'The node serving this request is down',
  SG_ERR_BAD_IMAGE: 'The upload is not a valid JPEG or PNG image',
  SG_ERR_UPLOAD_TOO_LARGE: 'The upload is larger than allowed',
  SG_ERR_SHARD_MOVE: 'A logical shard move could not be carried out',
  SG_ERR_BUDGET_EXHAUSTED: 'A bounded loop or log ran out of budget',
  SG_ERR_SUBSCRIPTION: 'The subscription could not be made: its callback is not allowed, not reachable or did not echo the challenge',
  SG_ERR_BUSY: 'An operation that runs one at a time is already running',
  SG_ERR_BACKEND_UNREACHABLE: 'A real backend (RabbitMQ, Redis, Postgres, memcached) could not be reached',
  SG_ERR_CALIBRATION_INVALID: 'The calibration profile is missing, not JSON or does not match its schema',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function simError(code: ErrorCode, message?: string, details?: Record<string, unknown>): SimError {
  return new SimError(code, message ?? ERROR_CODES[code], details);
}

export function isSimError(err: unknown, code?: ErrorCode): err is SimError {
  return err instanceof SimError && (code === undefined || err.code === code);
}
