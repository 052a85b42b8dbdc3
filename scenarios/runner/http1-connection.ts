// A VU's own plain-HTTP/1.1 keep-alive connection, on a raw TCP socket: the request is written as
// one buffer and the response parsed in place. This is the runner's hot path (one exchange at a
// time per VU, as k6's VUs do); undici serves everything else (TLS, batch, setup). A general client
// spends most of its time on generality — per-request objects, dispatcher queues, diagnostics — that
// a VU's single sequential exchange does not need; this path costs a fraction of it per request, so
// the load generator is not the bottleneck (see `npm run bench`).
//
// What it implements of RFC 9112: a status line and header fields (obs-fold rejected), bodies by
// Content-Length, by chunked Transfer-Encoding (extensions ignored, trailers read and dropped) or
// until close; no body for HEAD, 1xx, 204 and 304; 1xx interim responses skipped; `Connection:
// close` (and HTTP/1.0 without keep-alive) closes after the exchange. A request on a reused
// connection that the server had closed meanwhile (no byte of the response arrived) is retried once
// on a new connection when its method is idempotent, as Go's transport (k6's) does.

import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** What an exchange on the connection needs to be told (timings are read by the caller). */
export interface Http1Exchange {
  readonly method: string;
  /** The request's bytes: request line, header fields, blank line and body. */
  readonly head: Buffer;
  readonly keepBody: boolean;
  /** The TCP connect took this long (ms), when this exchange opened the connection. */
  onConnected(connectMs: number): void;
  /** The request is about to be written to a connected socket (sending starts). */
  onWriteStart(): void;
  /** Bytes handed to the socket: sending is over. */
  onSent(): void;
  /** Status line and header fields parsed (final response, not 1xx). */
  onResponseHead(status: number, statusText: string, headers: string[]): void;
  onBody(chunk: Buffer): void;
  /** The exchange finished, with an error or not; the byte counts are this exchange's. */
  onDone(err: Error | null, bytesWritten: number, bytesRead: number, remoteIp: string, remotePort: number): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CRLF = 0x0a;
const MAX_HEADER_BYTES = 64 * 1024;

const enum State {
  Head,
  /** Body of a known length: `remaining` bytes to go. */
  Length,
  ChunkSize,
  ChunkData,
  /** The CRLF after a chunk's data. */
  ChunkEnd,
  Trailers,
  /** Body until the server closes. */
  UntilClose,
}

function protocolError(message: string): Error {
  return Object.assign(new Error(`malformed HTTP response: ${message}`), { code: 'HPE_INVALID' });
}

/** The server closed the connection before the response was complete (Go: EOF). */
function eofError(): Error {
  return Object.assign(new Error('EOF'), { code: 'UND_ERR_SOCKET' });
}

export class Http1Connection {
  private socket: Socket | null = null;
  /** Set once the socket is connected and until it closes. */
  private open = false;
  /** performance.now() when it went idle (for the keep-alive timeout). */
  private idleSince = 0;
  private ex: Http1Exchange | null = null;
  /** The current exchange is on a connection an earlier exchange used (a retry candidate). */
  private reused = false;
  private retried = false;
  private gotBytes = false;
  /** The socket the current exchange was written to (kept for its counters after a close). */
  private exSocket: Socket | null = null;
  private written0 = 0;
  private read0 = 0;
  // Parser state.
  private state = State.Head;
  private headBuf: Buffer | null = null;
  private remaining = 0;
  private noBody = false;
  private closeAfter = false;
  /** ms the server said it keeps an idle connection (Keep-Alive: timeout=N), if it said. */
  private serverIdleMs = Number.POSITIVE_INFINITY;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly keepAliveTimeoutMs: number,
    private readonly connectTimeoutMs: number,
  ) {}

  /** The signal whose abort listener already covers this connection (set by the HTTP client). */
  watchedSignal: AbortSignal | null = null;

  get busy(): boolean {
    return this.ex !== null;
  }

  /** The exchange on the connection now, or null. */
  get current(): Http1Exchange | null {
    return this.ex;
  }

  get connected(): boolean {
    return this.open;
  }

  /** Starts an exchange; the connection must not be busy. */
  send(ex: Http1Exchange): void {
    this.ex = ex;
    this.retried = false;
    this.exSocket = null;
    // Reuse an idle connection while neither side would have closed it: our own limit, and a second
    // short of the server's announced one (a race there is retried for idempotent requests anyway).
    if (this.open && performance.now() - this.idleSince > Math.min(this.keepAliveTimeoutMs, this.serverIdleMs - 1000)) this.destroySocket();
    this.start();
  }

  /** Abandons the current exchange (timeout, signal): the connection is closed, as a client must. */
  abort(): void {
    this.ex = null;
    this.destroySocket();
  }

  close(): void {
    this.ex = null;
    this.destroySocket();
  }

  private start(): void {
    const ex = this.ex!;
    this.resetParser();
    this.gotBytes = false;
    this.exSocket = null;
    if (this.open) {
      this.reused = true;
      this.write(ex);
      return;
    }
    this.reused = false;
    const t0 = performance.now();
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    socket.setTimeout(this.connectTimeoutMs);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.setKeepAlive(true, 60_000);
      this.open = true;
      if (this.socket !== socket || this.ex !== ex) return;
      ex.onConnected(performance.now() - t0);
      this.write(ex);
    });
    socket.once('timeout', () => {
      if (this.open) return;
      socket.destroy(Object.assign(new Error('dial: i/o timeout'), { code: 'ETIMEDOUT' }));
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket === socket) this.onData(chunk);
    });
    socket.on('error', (err) => {
      if (this.socket === socket) this.onClosed(err);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.onClosed(null);
    });
  }

  private write(ex: Http1Exchange): void {
    const s = this.socket!;
    this.exSocket = s;
    this.written0 = s.bytesWritten;
    this.read0 = s.bytesRead;
    ex.onWriteStart();
    s.write(ex.head);
    ex.onSent();
  }

  private resetParser(): void {
    this.state = State.Head;
    this.headBuf = null;
    this.remaining = 0;
    this.noBody = false;
    this.closeAfter = false;
  }

  private onClosed(err: Error | null): void {
    this.open = false;
    this.socket = null;
    const ex = this.ex;
    if (!ex) return;
    // A body delimited by the close ends here.
    if (err === null && this.state === State.UntilClose) return this.finish(null, true);
    // The server had closed the idle connection as we reused it: once more on a new one.
    if (this.reused && !this.gotBytes && !this.retried && IDEMPOTENT.has(ex.method)) {
      this.retried = true;
      this.start();
      return;
    }
    this.finish(err ?? eofError(), true);
  }

  private finish(err: Error | null, closing: boolean): void {
    const ex = this.ex!;
    const s = this.exSocket;
    this.exSocket = null;
    const written = s ? s.bytesWritten - this.written0 : 0;
    const read = s ? s.bytesRead - this.read0 : 0;
    const ip = s?.remoteAddress ?? '';
    const port = s?.remotePort ?? 0;
    this.ex = null;
    if (closing || err || this.closeAfter) this.destroySocket();
    else this.idleSince = performance.now();
    ex.onDone(err, written, read, ip, port);
  }

  private destroySocket(): void {
    const s = this.socket;
    this.socket = null;
    this.open = false;
    if (s) s.destroy();
  }

  private onData(chunk: Buffer): void {
    if (!this.ex) {
      // Bytes while idle: the server broke the protocol; this connection cannot be reused.
      this.destroySocket();
      return;
    }
    this.gotBytes = true;
    let buf = chunk;
    try {
      while (buf.length > 0 && this.ex) {
        const used = this.step(buf);
        if (used < 0) return; // waiting for more bytes (kept)
        buf = buf.subarray(used);
      }
    } catch (e) {
      this.finish(e as Error, true);
    }
  }

  /** Consumes the start of `buf`; returns the bytes used, or -1 when it kept them for later. */
  private step(buf: Buffer): number {
    switch (this.state) {
      case State.Head: {
        const data = this.headBuf ? Buffer.concat([this.headBuf, buf]) : buf;
        const end = data.indexOf('\r\n\r\n', 0, 'latin1');
        if (end < 0) {
          if (data.length > MAX_HEADER_BYTES) throw protocolError('header section too large');
          this.headBuf = data === buf ? Buffer.from(buf) : data;
          return -1;
        }
        const consumedBefore = this.headBuf ? this.headBuf.length : 0;
        this.headBuf = null;
        this.onHead(data.toString('latin1', 0, end));
        return end + 4 - consumedBefore;
      }
      case State.Length: {
        const n = Math.min(this.remaining, buf.length);
        if (n > 0) this.body(buf.subarray(0, n));
        this.remaining -= n;
        if (this.remaining === 0) this.finish(null, false);
        return n;
      }
      case State.ChunkSize: {
        const nl = buf.indexOf(CRLF);
        if (nl < 0) return this.keep(buf);
        const line = this.takeLine(buf, nl);
        const semi = line.indexOf(';');
        const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw protocolError(`bad chunk size "${hex.slice(0, 20)}"`);
        this.remaining = parseInt(hex, 16);
        this.state = this.remaining === 0 ? State.Trailers : State.ChunkData;
        return nl + 1;
      }
      case State.ChunkData: {
        const n = Math.min(this.remaining, buf.length);
        this.body(buf.subarray(0, n));
        this.remaining -= n;
        if (this.remaining === 0) this.state = State.ChunkEnd;
        return n;
      }
      case State.ChunkEnd: {
        const nl = buf.indexOf(CRLF);
        if (nl < 0) return this.keep(buf);
        if (this.takeLine(buf, nl) !== '') throw protocolError('chunk data longer than its size');
        this.state = State.ChunkSize;
        return nl + 1;
      }
      case State.Trailers: {
        const nl = buf.indexOf(CRLF);
        if (nl < 0) return this.keep(buf);
        if (this.takeLine(buf, nl) === '') this.finish(null, false);
        return nl + 1;
      }
      case State.UntilClose:
        this.body(buf);
        return buf.length;
    }
  }

  /** Keeps a partial line for the next data event. */
  private keep(buf: Buffer): number {
    const data = this.headBuf ? Buffer.concat([this.headBuf, buf]) : Buffer.from(buf);
    if (data.length > MAX_HEADER_BYTES) throw protocolError('line too long');
    this.headBuf = data;
    return -1;
  }

  /** A line ending at `nl` (LF) in `buf`, with any kept partial line before it, without CR LF. */
  private takeLine(buf: Buffer, nl: number): string {
    let line = buf.toString('latin1', 0, nl);
    if (this.headBuf) {
      line = this.headBuf.toString('latin1') + line;
      this.headBuf = null;
    }
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  }

  private body(chunk: Buffer): void {
    if (chunk.length > 0) this.ex!.onBody(chunk);
  }

  private onHead(head: string): void {
    const lines = head.split('\r\n');
    const statusLine = lines[0]!;
    const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw protocolError(`bad status line "${statusLine.slice(0, 40)}"`);
    const http10 = m[1] === '0';
    const status = Number(m[2]);
    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let connection = '';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) throw protocolError(`bad header line "${line.slice(0, 40)}"`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      headers.push(name, value);
      switch (name.length) {
        case 14:
          if (name.toLowerCase() === 'content-length') {
            if (!/^\d{1,15}$/.test(value) || (contentLength >= 0 && Number(value) !== contentLength)) throw protocolError(`bad Content-Length "${value}"`);
            contentLength = Number(value);
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') chunked = value.toLowerCase().split(',').map((s) => s.trim()).pop() === 'chunked';
          break;
        case 10: {
          const lower = name.toLowerCase();
          if (lower === 'connection') connection = value.toLowerCase();
          else if (lower === 'keep-alive') {
            const t = /timeout=(\d+)/i.exec(value);
            if (t) this.serverIdleMs = Number(t[1]) * 1000;
          }
          break;
        }
      }
    }
    // Interim responses (100 Continue, 103 Early Hints) precede the real one.
    if (status < 200) {
      this.resetParser();
      return;
    }
    const ex = this.ex!;
    this.closeAfter = connection.includes('close') || (http10 && !connection.includes('keep-alive'));
    ex.onResponseHead(status, m[3] ?? '', headers);
    this.noBody = ex.method === 'HEAD' || status === 204 || status === 304;
    if (this.noBody) return this.finish(null, false);
    if (chunked) this.state = State.ChunkSize;
    else if (contentLength >= 0) {
      this.remaining = contentLength;
      this.state = State.Length;
      if (contentLength === 0) this.finish(null, false);
    } else {
      this.state = State.UntilClose;
      this.closeAfter = true;
    }
  }
}

/** The request's bytes in one buffer: request line, Host, the caller's fields, Content-Length, body. */
export function requestHead(method: string, path: string, hostHeader: string, headers: string[], body: Buffer | null): Buffer {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let hasHost = false;
  let hasLength = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw Object.assign(new Error(`invalid header field ${JSON.stringify(name)}`), { code: 'ERR_INVALID_URL' });
    const lower = name.length === 4 || name.length === 14 ? name.toLowerCase() : '';
    if (lower === 'host') hasHost = true;
    else if (lower === 'content-length') hasLength = true;
    head += `${name}: ${value}\r\n`;
  }
  if (!hasHost) head += `host: ${hostHeader}\r\n`;
  if (body && !hasLength) head += `content-length: ${body.length}\r\n`;
  else if (!body && !hasLength && (method === 'POST' || method === 'PUT' || method === 'PATCH')) head += 'content-length: 0\r\n';
  head += '\r\n';
  if (!body || body.length === 0) return Buffer.from(head, 'latin1');
  const h = Buffer.from(head, 'latin1');
  return Buffer.concat([h, body], h.length + body.length);
}
