// Exit codes name the failure, as k6's do (99 thresholds, 104 bad config, 107 script error).

export const EXIT = {
  OK: 0,
  /** A regression beyond tolerance (compare) or a failed benchmark target. */
  FAILED: 1,
  /** Bad command-line usage. */
  USAGE: 2,
  /** Thresholds failed (k6: ThresholdsHaveFailed). */
  THRESHOLDS: 99,
  /** Invalid configuration: topology, options (k6: InvalidConfig). */
  INVALID_CONFIG: 104,
  /** A real backend (RabbitMQ, Redis, Postgres, memcached) could not be reached (sysexits' EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** Interrupted from outside, e.g. Ctrl-C (k6: ExternalAbort). */
  INTERRUPTED: 105,
  /** The scenario script threw (k6: ScriptException). */
  SCRIPT_ERROR: 107,
  /** The script aborted the test (k6: ScriptAborted). */
  ABORTED: 108,
} as const;
