// A deployment's namespace: it names the RabbitMQ queues (`scalegram.<namespace>.<kind>`) and the
// real-Redis keys (`scalegram:<namespace>:`) that a server and its `scalegram worker` processes share.

/** Why `name` cannot be a namespace (1–64 letters, digits, _ . -), or null. */
export function namespaceProblem(name: string): string | null {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? null : `namespace "${name}" must be 1–64 letters, digits or _ . -`;
}
