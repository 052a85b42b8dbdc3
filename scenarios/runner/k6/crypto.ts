// 'k6/crypto' for Scalegram's runner: hashes, HMAC and random bytes through node:crypto, with k6's
// output encodings (hex, base64, base64url with padding, base64rawurl, binary = ArrayBuffer).

import * as nodeCrypto from 'node:crypto';
import { K6ShimError, SHIM_ERRORS } from './host.ts';

type Input = string | ArrayBuffer | ArrayBufferView;
export type OutputEncoding = 'hex' | 'base64' | 'base64url' | 'base64rawurl' | 'binary';

// k6's algorithm names → OpenSSL's.
const ALGORITHMS: Record<string, string> = {
  md4: 'md4',
  md5: 'md5',
  sha1: 'sha1',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sha512_224: 'sha512-224',
  sha512_256: 'sha512-256',
  ripemd160: 'ripemd160',
};

function algorithm(name: string): string {
  const a = ALGORITHMS[name];
  if (!a) throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `unknown hash algorithm ${JSON.stringify(name)}`);
  return a;
}

function bytes(input: Input): Buffer {
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  if (input instanceof ArrayBuffer) return Buffer.from(input);
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

function encode(digest: Buffer, encoding: OutputEncoding): string | ArrayBuffer {
  switch (encoding) {
    case 'hex':
      return digest.toString('hex');
    case 'base64':
      return digest.toString('base64');
    case 'base64rawurl':
      return digest.toString('base64url');
    case 'base64url': {
      const s = digest.toString('base64url');
      return s + '='.repeat((4 - (s.length % 4)) % 4);
    }
    case 'binary':
      return digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.byteLength) as ArrayBuffer;
    default:
      throw new K6ShimError(SHIM_ERRORS.BAD_ARGUMENT, `unknown output encoding ${JSON.stringify(encoding)}`);
  }
}

function hashWith(name: string) {
  return (input: Input, outputEncoding: OutputEncoding): string | ArrayBuffer => {
    try {
      return encode(nodeCrypto.createHash(algorithm(name)).update(bytes(input)).digest(), outputEncoding);
    } catch (e) {
      if (e instanceof K6ShimError) throw e;
      // OpenSSL 3 leaves md4 and ripemd160 to its legacy provider, which Node may not load.
      throw new K6ShimError(SHIM_ERRORS.UNSUPPORTED, `${name} is not available in this Node build: ${(e as Error).message}`);
    }
  };
}

export const md4 = hashWith('md4');
export const md5 = hashWith('md5');
export const sha1 = hashWith('sha1');
export const sha256 = hashWith('sha256');
export const sha384 = hashWith('sha384');
export const sha512 = hashWith('sha512');
export const sha512_224 = hashWith('sha512_224');
export const sha512_256 = hashWith('sha512_256');
export const ripemd160 = hashWith('ripemd160');

export function hmac(name: string, secret: Input, data: Input, outputEncoding: OutputEncoding): string | ArrayBuffer {
  return encode(nodeCrypto.createHmac(algorithm(name), bytes(secret)).update(bytes(data)).digest(), outputEncoding);
}

/** k6's Hasher: update() any number of times, then digest(encoding). */
export class Hasher {
  constructor(private readonly h: nodeCrypto.Hash | nodeCrypto.Hmac) {}
  update(input: Input): void {
    this.h.update(bytes(input));
  }
  digest(outputEncoding: OutputEncoding): string | ArrayBuffer {
    return encode(this.h.digest(), outputEncoding);
  }
}

export function createHash(name: string): Hasher {
  return new Hasher(nodeCrypto.createHash(algorithm(name)));
}

export function createHMAC(name: string, secret: Input): Hasher {
  return new Hasher(nodeCrypto.createHmac(algorithm(name), bytes(secret)));
}

export function randomBytes(size: number): ArrayBuffer {
  const b = nodeCrypto.randomBytes(size);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

export default { md4, md5, sha1, sha256, sha384, sha512, sha512_224, sha512_256, ripemd160, hmac, createHash, createHMAC, randomBytes };
