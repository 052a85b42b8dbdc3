// A file of framed records that is only ever appended to (the in-process Redis's AOF, the job
// journal). A frame is its payload's length and CRC-32, then the payload, so the frame a kill tore
// mid-write is recognised on open and cut off, and appending resumes after the last whole frame.

import { closeSync, fchmodSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { FILE_MODE } from './data-dir.ts';

/** Bytes before each payload: its length and its CRC-32, both little-endian uint32. */
export const FRAME_HEADER_BYTES = 8;
/** Largest payload a frame may carry (bytes); a header claiming more can only be torn or foreign. */
export const MAX_FRAME_BYTES = 512 * 2 ** 20;
/** Bytes read per read() while scanning a file on open. */
const SCAN_CHUNK_BYTES = 4 * 2 ** 20;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE, as zlib and gzip) in JavaScript, for Node versions before zlib.crc32 (20.15). */
export function crc32Js(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
export const crc32: (bytes: Uint8Array) => number = nativeCrc32 ? (b) => nativeCrc32(b) : crc32Js;

export function encodeFrame(payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_BYTES) throw new RangeError(`frame payload of ${payload.length} bytes is over the ${MAX_FRAME_BYTES}-byte limit`);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export interface OpenedFile {
  file: AppendOnlyFile;
  /** Whole frames found (count). */
  frames: number;
  /** Bytes cut off the end: a torn last frame, or everything from the first frame that failed its check. */
  droppedBytes: number;
}

export class AppendOnlyFile {
  private fd: number;
  private size: number;

  private constructor(
    readonly path: string,
    fd: number,
    size: number,
    private readonly fsync: boolean,
  ) {
    this.fd = fd;
    this.size = size;
  }

  /**
   * Opens `path` (creating it, FILE_MODE), hands every whole frame's payload to `onPayload` in
   * order (a view into a read buffer: copy what you keep), and truncates the file after the last
   * whole frame. A frame fails its check when its
   * length runs past the end of the file or over MAX_FRAME_BYTES, or its CRC-32 differs.
   */
  static open(path: string, onPayload: (payload: Buffer) => void, options: { fsync?: boolean } = {}): OpenedFile {
    const fd = openSync(path, 'a+', FILE_MODE);
    try {
      fchmodSync(fd, FILE_MODE);
      const total = fstatSync(fd).size;
      let pos = 0; // file offset of the next frame
      let frames = 0;
      let buf = Buffer.alloc(0); // file bytes from offset bufAt
      let bufAt = 0;
      // Makes buf cover [pos, pos + n); false when the file ends first.
      const have = (n: number): boolean => {
        if (pos + n > total) return false;
        if (pos + n <= bufAt + buf.length) return true;
        const next = Buffer.allocUnsafe(Math.min(Math.max(n, SCAN_CHUNK_BYTES), total - pos));
        let filled = buf.copy(next, 0, pos - bufAt);
        while (filled < next.length) {
          const r = readSync(fd, next, filled, next.length - filled, pos + filled);
          if (r <= 0) break;
          filled += r;
        }
        buf = next.subarray(0, filled);
        bufAt = pos;
        return filled >= n;
      };
      while (have(FRAME_HEADER_BYTES)) {
        const length = buf.readUInt32LE(pos - bufAt);
        if (length > MAX_FRAME_BYTES || !have(FRAME_HEADER_BYTES + length)) break;
        const at = pos - bufAt;
        const payload = buf.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
        if (crc32(payload) !== buf.readUInt32LE(at + 4)) break;
        onPayload(payload);
        frames++;
        pos += FRAME_HEADER_BYTES + length;
      }
      const valid = pos;
      if (valid < total) ftruncateSync(fd, valid);
      return { file: new AppendOnlyFile(path, fd, valid, options.fsync ?? false), frames, droppedBytes: total - valid };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Bytes in the file. */
  get bytes(): number {
    return this.size;
  }

  /**
   * Appends one frame with write() before returning: in the kernel's page cache, so it survives
   * the process being killed; on disk only with `fsync` (fdatasync per append).
   */
  append(payload: Buffer | string): void {
    const frame = encodeFrame(typeof payload === 'string' ? Buffer.from(payload) : payload);
    for (let off = 0; off < frame.length; ) off += writeSync(this.fd, frame, off, frame.length - off);
    if (this.fsync) fdatasyncSync(this.fd);
    this.size += frame.length;
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}
