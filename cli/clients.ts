// `scalegram clients register|list|revoke`: manages the registered API clients of a running
// server through its admin API (POST|GET /_sim/clients, DELETE /_sim/clients/{id}). The admin
// token comes from --admin-token or SCALEGRAM_ADMIN_TOKEN; the client secret is printed once, by
// register, and by nothing else.

import { parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram clients <register|list|revoke> [options]

Manage the registered API clients of a running server (real-time subscriptions authenticate with
a client's client_id and client_secret).

  register --name NAME      register a client; prints its client_id and client_secret (shown once)
  list                      list the clients (no secrets)
  revoke CLIENT_ID          revoke a client: its credentials stop working, its subscriptions are deleted

Options:
  --url URL           the server (default http://127.0.0.1:8080)
  --admin-token T     the server's admin token (default: $SCALEGRAM_ADMIN_TOKEN; scalegram serve prints it at start)
  --json              print the answer as JSON
  -h, --help          show this help
`;

/** The server could not be reached or refused: exit 1 with the reason. */
class ServerError extends Error {}

/** Time allowed for the server to answer (ms). */
const REQUEST_TIMEOUT_MS = 30_000;

interface ClientJson {
  client_id: string;
  name: string;
  created_time: string;
  client_secret?: string;
}

export async function clientsCommand(argv: string[]): Promise<number> {
  try {
    return await clients(argv);
  } catch (err) {
    if (!(err instanceof ServerError)) throw err;
    process.stderr.write(`scalegram clients: ${err.message}\n`);
    return EXIT.FAILED;
  }
}

async function clients(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { url: { type: 'string' }, 'admin-token': { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const [action, ...rest] = positionals;
  if (action !== 'register' && action !== 'list' && action !== 'revoke') throw new UsageError(action ? `unknown action "${action}" (register, list or revoke)` : `an action is needed (register, list or revoke)\n\n${HELP}`);
  const base = (values.url ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  try {
    const u = new URL(base);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new UsageError(`--url must be an http(s) URL (got "${base}")`);
  }
  const token = values['admin-token'] ?? process.env.SCALEGRAM_ADMIN_TOKEN;
  if (!token) throw new UsageError('the admin token is needed: --admin-token or SCALEGRAM_ADMIN_TOKEN (scalegram serve prints it at start)');

  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new ServerError(`cannot reach ${base}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // Not JSON: reported below with the status.
    }
    if (!res.ok) {
      const meta = (json as { meta?: { error_type?: string; error_message?: string } } | null)?.meta;
      throw new ServerError(`${method} ${path}: HTTP ${res.status}${meta ? ` ${meta.error_type}: ${meta.error_message}` : ''}`);
    }
    return json;
  };

  if (action === 'register') {
    if (rest.length) throw new UsageError(`register takes --name, not "${rest.join(' ')}"`);
    if (!values.name) throw new UsageError('register needs --name NAME');
    const c = (await call('POST', '/_sim/clients', { name: values.name })) as ClientJson;
    process.stdout.write(values.json ? JSON.stringify(c) + '\n' : `client_id:     ${c.client_id}\nclient_secret: ${c.client_secret}\n  (the secret is shown only now: keep it; subscriptions and signed notifications use it)\n`);
    return EXIT.OK;
  }
  if (action === 'list') {
    const { clients } = (await call('GET', '/_sim/clients')) as { clients: ClientJson[] };
    if (values.json) process.stdout.write(JSON.stringify(clients) + '\n');
    else if (clients.length === 0) process.stdout.write('no clients\n');
    else for (const c of clients) process.stdout.write(`${c.client_id}  ${new Date(Number(c.created_time) * 1000).toISOString()}  ${c.name}\n`);
    return EXIT.OK;
  }
  const [id, ...extra] = rest;
  if (!id || extra.length) throw new UsageError('revoke takes one CLIENT_ID');
  if (!/^[0-9a-f]{32}$/.test(id)) throw new UsageError(`"${id}" is not a client_id (32 hex digits)`);
  await call('DELETE', `/_sim/clients/${id}`);
  process.stdout.write(values.json ? JSON.stringify({ revoked: id }) + '\n' : `revoked ${id}\n`);
  return EXIT.OK;
}
