// Listening on an address the user named: the port is tried before anything slow is built, a
// failure to bind is one line naming the option to change (exit 2), and once bound the banner shows
// the address the socket is really on, with a warning when that is reachable from the network.

import { createServer, isIPv6, type AddressInfo } from 'node:net';
import { UsageError } from './usage-error.ts';

/** The one-line explanation of a failure to bind host:port, or null when it is not about the address. */
export function listenErrorMessage(err: unknown, host: string, port: number, flag = '--port'): string | null {
  switch ((err as NodeJS.ErrnoException | null)?.code) {
    case 'EADDRINUSE':
      return `port ${port} is already in use on ${host}; choose another with ${flag} (0 picks a free one)`;
    case 'EACCES':
      return `not allowed to listen on port ${port}${port < 1024 ? ' (ports below 1024 need privileges)' : ''}; choose another with ${flag}`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${host}: not an address of this machine; change --host (127.0.0.1 keeps it local)`;
    default:
      return null;
  }
}

/**
 * Binds host:port once and lets it go, so that a port in use is reported before the topology is
 * built (and before a data directory is opened). Port 0 always binds. The real listen can still
 * lose a race for the port; its error gets the same message.
 */
export async function checkCanListen(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err) => {
      const message = listenErrorMessage(err, host, port);
      reject(message ? new UsageError(message) : err);
    });
    probe.listen({ host, port }, () => probe.close(() => resolve()));
  });
}

/** `http://host:port` for a bound socket (IPv6 in brackets). */
export function boundUrl(address: AddressInfo): string {
  return `http://${isIPv6(address.address) ? `[${address.address}]` : address.address}:${address.port}`;
}

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback: reachable from this machine only. */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d+\.\d+\.\d+$/.test(v4) || address === '::1';
}

/** What a server bound off loopback exposes, or null on loopback. */
export function exposureWarning(address: AddressInfo): string | null {
  if (isLoopback(address.address)) return null;
  const where = address.address === '0.0.0.0' || address.address === '::' ? `${address.address} (every network interface)` : address.address;
  return (
    `scalegram: WARNING: listening on ${where}, not on loopback. Anyone who can reach this machine on port ${address.port} can use ` +
    'the v1 API (/v1, /oauth), the /_sim admin API (behind its admin token: it changes the topology, fails servers, seeds users and lists their access tokens), ' +
    '/metrics and /docs. Use --host 127.0.0.1 to keep it on this machine.\n'
  );
}
