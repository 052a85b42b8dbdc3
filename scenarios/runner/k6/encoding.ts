// 'k6/encoding' for Scalegram's runner: base64 in k6's four variants (std, rawstd, url, rawurl),
// through Node's Buffer; decoding gives an ArrayBuffer, or a string with format 's'.

import { K6ShimError, SHIM_ERRORS } from './host.ts';

export type Base64Variant = 'std' | 'rawstd' | 'url' | 'rawurl';

function bytesOf(input: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  if (input instanceof ArrayBuffer) return Buffer.from(input);
  if (ArrayBuffer.isView(input)) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, 'b64encode: input must be a string or an ArrayBuffer');
}

function variant(encoding: string | undefined): Base64Variant {
  const v = encoding ?? 'std';
  if (v !== 'std' && v !== 'rawstd' && v !== 'url' && v !== 'rawurl') throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `unknown base64 variant ${JSON.stringify(encoding)}`);
  return v;
}

export function b64encode(input: string | ArrayBuffer | ArrayBufferView, encoding?: Base64Variant): string {
  const v = variant(encoding);
  const b = bytesOf(input);
  if (v === 'std') return b.toString('base64');
  if (v === 'rawstd') return b.toString('base64').replace(/=+$/, '');
  const url = b.toString('base64url');
  // Node's base64url is unpadded (rawurl); k6's 'url' keeps the padding.
  return v === 'rawurl' ? url : url + '='.repeat((4 - (url.length % 4)) % 4);
}

export function b64decode(input: string, encoding?: Base64Variant, format?: 's'): ArrayBuffer | string {
  const v = variant(encoding);
  const b = Buffer.from(input, v === 'url' || v === 'rawurl' ? 'base64url' : 'base64');
  if (format === 's') return b.toString('utf8');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

export default { b64encode, b64decode };
