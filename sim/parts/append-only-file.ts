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
   * whole frame. A frame fails its check when its length runs past the end of the file or over
   * MAX_FRAME_BYTES, or its CRC-32 differs.
   */
  static open(path: string, onPayload: (payload: Buffer) => void, options: { fsync?: boolean } = {}): OpenedFile {
    const fd = openSync(path, 'a+', FILE_MODE);
    try {
      const reader = new FrameReader(fd);
      for (let payload = reader.next(); payload; payload = reader.next()) onPayload(payload);
      return AppendOnlyFile.finish(path, fd, reader, options);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** open(), awaiting `onPayload` after each frame, so a large file is replayed a frame at a time. */
  static async openAsync(path: string, onPayload: (payload: Buffer) => Promise<void>, options: { fsync?: boolean } = {}): Promise<OpenedFile> {
    const fd = openSync(path, 'a+', FILE_MODE);
    try {
      const reader = new FrameReader(fd);
      for (let payload = reader.next(); payload; payload = reader.next()) await onPayload(payload);
      return AppendOnlyFile.finish(path, fd, reader, options);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  private static finish(path: string, fd: number, reader: FrameReader, options: { fsync?: boolean }): OpenedFile {
    fchmodSync(fd, FILE_MODE);
    if (reader.validBytes < reader.totalBytes) ftruncateSync(fd, reader.validBytes);
    return { file: new AppendOnlyFile(path, fd, reader.validBytes, options.fsync ?? false), frames: reader.frames, droppedBytes: reader.totalBytes - reader.validBytes };
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

/** Reads whole, checked frames from the start of a file, a chunk of reads at a time. */
class FrameReader {
  readonly totalBytes: number;
  /** File offset after the last whole frame read. */
  validBytes = 0;
  frames = 0;
  /** File bytes from offset bufAt. */
  private buf = Buffer.alloc(0);
  private bufAt = 0;
  private done = false;

  constructor(private readonly fd: number) {
    this.totalBytes = fstatSync(fd).size;
  }

  /** The next frame's payload (a view into the read buffer), or null at the end or at the first bad frame. */
  next(): Buffer | null {
    if (this.done || !this.have(FRAME_HEADER_BYTES)) return this.stop();
    const length = this.buf.readUInt32LE(this.validBytes - this.bufAt);
    if (length > MAX_FRAME_BYTES || !this.have(FRAME_HEADER_BYTES + length)) return this.stop();
    const at = this.validBytes - this.bufAt;
    const payload = this.buf.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
    if (crc32(payload) !== this.buf.readUInt32LE(at + 4)) return this.stop();
    this.frames++;
    this.validBytes += FRAME_HEADER_BYTES + length;
    return payload;
  }

  private stop(): null {
    this.done = true;
    return null;
  }

  /** Makes buf cover [validBytes, validBytes + n); false when the file ends first. */
  private have(n: number): boolean {
    const pos = this.validBytes;
    if (pos + n > this.totalBytes) return false;
    if (pos + n <= this.bufAt + this.buf.length) return true;
    const next = Buffer.allocUnsafe(Math.min(Math.max(n, SCAN_CHUNK_BYTES), this.totalBytes - pos));
    let filled = this.buf.copy(next, 0, pos - this.bufAt);
    while (filled < next.length) {
      const r = readSync(this.fd, next, filled, next.length - filled, pos + filled);
      if (r <= 0) break;
      filled += r;
    }
    this.buf = next.subarray(0, filled);
    this.bufAt = pos;
    return filled >= n;
  }
}
