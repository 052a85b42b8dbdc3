// 'k6/timers' for Scalegram's runner: k6's timer functions are Node's own. Their callbacks keep the
// VU's async context (AsyncLocalStorage follows timers), so k6/http and k6/execution work inside.

export const setTimeout = globalThis.setTimeout;
export const clearTimeout = globalThis.clearTimeout;
export const setInterval = globalThis.setInterval;
export const clearInterval = globalThis.clearInterval;

export default { setTimeout, clearTimeout, setInterval, clearInterval };
