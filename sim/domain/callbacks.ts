// Real HTTP to the callback URLs of real-time subscriptions, and the policy that says which
// addresses the server may connect to at all (default: loopback only), so that a subscription
// cannot make the server reach other hosts. The check is made on the address actually connected
// to: the name is resolved here, an allowed address is picked, and the socket connects to that
// address itself (no second lookup a DNS-rebinding answer could change); redirects are never followed.

import { promises as dns } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { simError } from '../engine/errors.ts';

/** Allowed when nothing is configured: the loopback ranges. */
export const DEFAULT_CALLBACK_ALLOW: readonly string[] = Object.freeze(['127.0.0.0/8', '::1/128']);

/** Longest callback URL accepted (characters). */
export const MAX_CALLBACK_URL_CHARS = 2000;
/** Bytes of a callback's answer read (the rest is not read). */
const MAX_RESPONSE_BYTES = 64 * 1024;

export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) => (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** `::ffff:127.0.0.1` → `127.0.0.1`, so IPv4 rules cover IPv4-mapped IPv6 addresses too. */
function plainAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/**
 * Which addresses callbacks may connect to: CIDR ranges (`10.1.0.0/16`, `fd00::/8`), single
 * addresses, and host names, which are resolved once, when the policy is made, to the addresses
 * they stand for (so a later DNS answer cannot widen it).
 */
export class CallbackPolicy {
  private constructor(
    private readonly list: BlockList,
    /** The entries as given, for describing the policy. */
    readonly entries: readonly string[],
  ) {}

  static loopbackOnly(): CallbackPolicy {
    const list = new BlockList();
    list.addSubnet('127.0.0.0', 8, 'ipv4');
    list.addAddress('::1', 'ipv6');
    return new CallbackPolicy(list, DEFAULT_CALLBACK_ALLOW);
  }

  /** A policy from entries; SG_ERR_CONFIG_INVALID names a bad entry or a name that does not resolve. */
  static async from(entries: readonly string[], resolve: Resolver = systemResolver): Promise<CallbackPolicy> {
    const list = new BlockList();
    for (const raw of entries) {
      const entry = raw.trim();
      const bad = (why: string) => simError('SG_ERR_CONFIG_INVALID', `invalid callback allowlist entry "${raw}": ${why}`, { field: 'callbackAllow', entry: raw });
      const slash = entry.indexOf('/');
      if (slash !== -1) {
        const address = entry.slice(0, slash);
        const bits = entry.slice(slash + 1);
        const family = isIP(address);
        if (family === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) throw bad('not a CIDR range');
        list.addSubnet(address, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
      } else if (isIP(entry) !== 0) {
        list.addAddress(plainAddress(entry), isIP(plainAddress(entry)) === 4 ? 'ipv4' : 'ipv6');
      } else if (/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(entry) && entry.length <= 253) {
        let addresses: string[];
        try {
          addresses = await resolve(entry);
        } catch (err) {
          throw bad(`the name does not resolve (${(err as Error).message})`);
        }
        if (addresses.length === 0) throw bad('the name does not resolve');
        for (const a of addresses) list.addAddress(plainAddress(a), isIP(plainAddress(a)) === 4 ? 'ipv4' : 'ipv6');
      } else {
        throw bad('expected an address, a CIDR range or a host name');
      }
    }
    return new CallbackPolicy(list, Object.freeze([...entries]));
  }

  allows(address: string): boolean {
    const a = plainAddress(address);
    const family = isIP(a);
    if (family === 0) return false;
    return this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

export type CallbackFailure = 'bad-url' | 'refused' | 'unreachable' | 'timeout';

export type CallbackResult =
  | { ok: true; status: number; body: string }
  | { ok: false; reason: CallbackFailure; detail: string };

/** Why a callback URL cannot be used at all (scheme, credentials, length), or null. */
export function callbackUrlProblem(url: string): string | null {
  if (url.length > MAX_CALLBACK_URL_CHARS) return `callback_url is longer than ${MAX_CALLBACK_URL_CHARS} characters`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'callback_url is not a URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'callback_url must be http or https';
  if (u.username || u.password) return 'callback_url must not carry credentials';
  return null;
}

export interface CallbackRequest {
  method: 'GET' | 'POST';
  url: string;
  body?: string;
  headers?: Record<string, string>;
  /** Time allowed for the whole exchange (ms). */
  timeoutMs: number;
  policy: CallbackPolicy;
  resolve?: Resolver;
}

/**
 * One HTTP exchange with a callback URL, refused before any byte is sent unless the address
 * connected to is allowed. Never throws: the outcome is a value (a status and up to 64 KiB of
 * the answer, or why there is none). A 3xx is an answer like any other; it is not followed.
 */
export async function callCallback(req: CallbackRequest): Promise<CallbackResult> {
  const problem = callbackUrlProblem(req.url);
  if (problem) return { ok: false, reason: 'bad-url', detail: problem };
  const u = new URL(req.url);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  let candidates: string[];
  if (isIP(host) !== 0) candidates = [host];
  else {
    try {
      candidates = await (req.resolve ?? systemResolver)(host);
    } catch (err) {
      return { ok: false, reason: 'unreachable', detail: `${host} does not resolve (${(err as Error).message})` };
    }
  }
  const address = candidates.find((a) => req.policy.allows(a));
  if (address === undefined) return { ok: false, reason: 'refused', detail: `${host} (${candidates.join(', ') || 'no address'}) is not an allowed callback address` };
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  const headers: Record<string, string> = { host: u.host, 'user-agent': 'Scalegram-Realtime/1.0', ...req.headers };
  if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
  const client = u.protocol === 'https:' ? https : http;
  return new Promise<CallbackResult>((resolve) => {
    let settled = false;
    const finish = (r: CallbackResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const request = client.request({
      // The checked address itself: no lookup happens between the check and the connect.
      host: address,
      family: isIP(address),
      port,
      path: u.pathname + u.search,
      method: req.method,
      headers,
      agent: false,
      ...(u.protocol === 'https:' ? { servername: isIP(host) === 0 ? host : undefined } : {}),
    });
    const timer = setTimeout(() => {
      finish({ ok: false, reason: 'timeout', detail: `no answer within ${req.timeoutMs} ms` });
      request.destroy();
    }, req.timeoutMs);
    request.on('socket', (socket) => {
      socket.once('connect', () => {
        // Belt and braces: the peer must be the address that was checked.
        if (!socket.remoteAddress || !req.policy.allows(socket.remoteAddress)) {
          finish({ ok: false, reason: 'refused', detail: `connected to ${socket.remoteAddress ?? 'an unknown address'}, which is not allowed` });
          request.destroy();
        }
      });
    });
    request.on('error', (err) => finish({ ok: false, reason: 'unreachable', detail: err.message }));
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        if (bytes >= MAX_RESPONSE_BYTES) return;
        chunks.push(chunk);
        bytes += chunk.length;
        if (bytes >= MAX_RESPONSE_BYTES) {
          finish({ ok: true, status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString('utf8') });
          res.destroy();
        }
      });
      res.on('end', () => finish({ ok: true, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish({ ok: false, reason: 'unreachable', detail: err.message }));
    });
    request.end(req.body);
  });
}
