// The path a request is routed by, for decisions about the whole API (admin gate, rate limit). The
// raw URL is not it: the router decodes percent-escapes, so `/%5Fsim/topology` reaches
// `/_sim/topology` and `/%761/users/self` reaches `/v1/users/self`. A matched request is judged by
// its route pattern; an unmatched one by its decoded path.

import type { FastifyRequest } from 'fastify';

export function routedPath(request: FastifyRequest): string {
  const pattern = request.routeOptions?.url;
  if (pattern) return pattern;
  const raw = request.url;
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
