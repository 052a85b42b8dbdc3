// What the bench's HTTP sections share: one autocannon measurement as a row (req/s, p50, p99,
// errors), two rounds of one route merged into one row, and the upload route's photo and multipart body.

import autocannon from 'autocannon';
import sharp from 'sharp';

export interface HttpRow {
  name: string;
  reqPerS: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** Mean response body size (bytes). */
  bytes: number;
}

export async function measure(name: string, opts: autocannon.Options): Promise<HttpRow> {
  process.stderr.write(`  measuring ${name} …\n`);
  const r = await autocannon(opts);
  return { name, reqPerS: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, bytes: r.requests.total ? Math.round(r.throughput.total / r.requests.total) : 0 };
}

/** Two measurements of one route as one: mean req/s and bytes, the worse p50 and p99, errors summed. */
export function mergeRows(a: HttpRow, b: HttpRow): HttpRow {
  return { name: a.name, reqPerS: (a.reqPerS + b.reqPerS) / 2, p50Ms: Math.max(a.p50Ms, b.p50Ms), p99Ms: Math.max(a.p99Ms, b.p99Ms), errors: a.errors + b.errors, non2xx: a.non2xx + b.non2xx, bytes: Math.round((a.bytes + b.bytes) / 2) };
}

/** The photo every upload of the bench posts: a 640×640 JPEG (quality 80), as a 2012 phone sent one. */
export function benchPhoto(): Promise<Buffer> {
  return sharp({ create: { width: 640, height: 640, channels: 3, background: '#3a7' } }).jpeg({ quality: 80 }).toBuffer();
}

/** POST /v1/media's body: a caption and the photo, as a client uploads them. */
export function multipart(photo: Buffer): { body: Buffer; contentType: string } {
  const boundary = '----scalegram-bench';
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="caption"\r\n\r\nbench upload #bench\r\n--${boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
  return { body: Buffer.concat([Buffer.from(head), photo, Buffer.from(`\r\n--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}
