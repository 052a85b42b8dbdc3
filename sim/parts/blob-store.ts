// The image store (Instagram kept photo bytes in S3 behind a CDN): objects by key with a content
// type and an S3-style ETag, held in memory or as plain files in the data dir, every byte counted.

import { createHash } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DIR_MODE, FILE_MODE, makePrivateDir } from './data-dir.ts';
import { simError } from '../engine/errors.ts';
import type { Metrics } from '../observability/metrics.ts';

export interface BlobObject {
  bytes: Buffer;
  contentType: string;
  etag: string;
}

export interface BlobStore {
  put(key: string, bytes: Buffer, contentType: string): Promise<{ etag: string }>;
  /** The object, or null when there is none (a miss is an ordinary, counted result). */
  get(key: string): Promise<BlobObject | null>;
  /** True when an object was deleted, false when there was none. */
  delete(key: string): Promise<boolean>;
  stats(): { objects: number; bytes: number };
  close(): Promise<void>;
}

/** Longest key (characters); S3's limit is 1024 bytes. */
const MAX_KEY_CHARS = 1024;
/** Longest path segment (characters), leaving room under the usual 255-byte file name limit. */
const MAX_SEGMENT_CHARS = 200;
const KEY_PATTERN = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;

/**
 * Refuses any key that could escape the store's directory or name something other than a plain
 * file in it: `..` anywhere, a leading `/`, empty or `.` segments, characters outside [A-Za-z0-9/_.-].
 */
export function validateKey(key: string): void {
  const bad = (why: string) => simError('SG_ERR_INVALID_PARAM', `invalid blob key ${JSON.stringify(key)}: ${why}`, { key });
  if (typeof key !== 'string' || key.length === 0) throw bad('empty');
  if (key.length > MAX_KEY_CHARS) throw bad(`longer than ${MAX_KEY_CHARS} characters`);
  if (key.includes('..')) throw bad('contains ".."');
  if (!KEY_PATTERN.test(key)) throw bad('use [A-Za-z0-9_.-] segments joined by single "/", with no leading or trailing "/"');
  for (const segment of key.split('/')) {
    if (segment === '.') throw bad('contains a "." segment');
    if (segment.length > MAX_SEGMENT_CHARS) throw bad(`a segment is longer than ${MAX_SEGMENT_CHARS} characters`);
  }
}

function checkPut(key: string, bytes: Buffer, contentType: string): void {
  validateKey(key);
  if (!Buffer.isBuffer(bytes)) throw simError('SG_ERR_INVALID_PARAM', 'blob bytes must be a Buffer', { key });
  if (typeof contentType !== 'string' || contentType.length === 0 || contentType.length > 255) {
    throw simError('SG_ERR_INVALID_PARAM', 'content type must be a non-empty string of at most 255 characters', { key });
  }
}

/** S3's ETag for a single-part upload: the quoted hex MD5 of the bytes. */
export function etagOf(bytes: Buffer): string {
  return `"${createHash('md5').update(bytes).digest('hex')}"`;
}

const TYPES_BY_EXTENSION: Readonly<Record<string, string>> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  json: 'application/json',
  txt: 'text/plain',
};

/** The content type a key's extension implies, for objects whose sidecar was lost. */
export function contentTypeFromKey(key: string): string {
  const dot = key.lastIndexOf('.');
  const ext = dot > key.lastIndexOf('/') ? key.slice(dot + 1).toLowerCase() : '';
  return TYPES_BY_EXTENSION[ext] ?? 'application/octet-stream';
}

/** The counting both stores share, so memory and dir runs report the same series. */
class BlobAccounting {
  objects = 0;
  bytes = 0;
  constructor(private readonly metrics: Metrics) {}

  written(size: number, previousSize: number | undefined): void {
    this.metrics.inc('blob_ops', { op: 'put' });
    this.metrics.inc('blob_bytes_written', undefined, size);
    if (previousSize === undefined) this.objects++;
    this.bytes += size - (previousSize ?? 0);
    this.publish();
  }

  read(size: number | null): void {
    // Hits are {op="get"}, misses {op="get",result="miss"}: sum over op="get" for every get.
    if (size === null) {
      this.metrics.inc('blob_ops', { op: 'get', result: 'miss' });
      return;
    }
    this.metrics.inc('blob_ops', { op: 'get' });
    this.metrics.inc('blob_bytes_read', undefined, size);
  }

  deleted(previousSize: number | undefined): void {
    if (previousSize === undefined) {
      this.metrics.inc('blob_ops', { op: 'delete', result: 'miss' });
      return;
    }
    this.metrics.inc('blob_ops', { op: 'delete' });
    this.objects--;
    this.bytes -= previousSize;
    this.publish();
  }

  publish(): void {
    this.metrics.set('blob_objects', {}, this.objects);
    this.metrics.set('blob_bytes', {}, this.bytes);
  }
}

function closedError(): Error {
  return simError('SG_ERR_NODE_DOWN', 'the blob store is closed');
}

export class MemoryBlobStore implements BlobStore {
  private readonly objects = new Map<string, BlobObject>();
  private readonly accounting: BlobAccounting;
  private closed = false;

  constructor(deps: { metrics: Metrics }) {
    this.accounting = new BlobAccounting(deps.metrics);
    this.accounting.publish();
  }

  async put(key: string, bytes: Buffer, contentType: string): Promise<{ etag: string }> {
    if (this.closed) throw closedError();
    checkPut(key, bytes, contentType);
    // Copies in and out, as a network store would: a caller reusing its buffer cannot change an object.
    const object = { bytes: Buffer.from(bytes), contentType, etag: etagOf(bytes) };
    const previous = this.objects.get(key);
    this.objects.set(key, object);
    this.accounting.written(bytes.length, previous?.bytes.length);
    return { etag: object.etag };
  }

  async get(key: string): Promise<BlobObject | null> {
    if (this.closed) throw closedError();
    validateKey(key);
    const object = this.objects.get(key);
    this.accounting.read(object ? object.bytes.length : null);
    return object ? { bytes: Buffer.from(object.bytes), contentType: object.contentType, etag: object.etag } : null;
  }

  async delete(key: string): Promise<boolean> {
    if (this.closed) throw closedError();
    validateKey(key);
    const previous = this.objects.get(key);
    this.objects.delete(key);
    this.accounting.deleted(previous?.bytes.length);
    return previous !== undefined;
  }

  stats(): { objects: number; bytes: number } {
    return { objects: this.accounting.objects, bytes: this.accounting.bytes };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.objects.clear();
  }
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

/**
 * Objects as plain files under `<dir>/objects/<key>` (open them with any viewer), each with a
 * sidecar `<dir>/meta/<key>.json` holding its content type; writes land in `<dir>/tmp` and are
 * renamed into place, so a reader sees the old bytes or the new, never half. Renames are atomic
 * against a crashed process, not a lost machine (no fsync: this is a simulation). ETags are
 * recomputed from the bytes, so they cannot disagree with them. One process owns a directory.
 * put() resolves only after both renames, so an upload is answered once its bytes are in place.
 * Directories are 0700 and files 0600 (sim/parts/data-dir.ts).
 */
export class DirBlobStore implements BlobStore {
  private readonly objectsDir: string;
  private readonly metaDir: string;
  private readonly tmpDir: string;
  /** Size of every object by key, rebuilt from the files on open. */
  private readonly sizes = new Map<string, number>();
  /** Writes and deletes of one key run one at a time, so the sizes above follow the files. */
  private readonly tails = new Map<string, Promise<void>>();
  private readonly accounting: BlobAccounting;
  private tmpSeq = 0;
  private closed = false;

  constructor(dir: string, deps: { metrics: Metrics }) {
    this.objectsDir = join(dir, 'objects');
    this.metaDir = join(dir, 'meta');
    this.tmpDir = join(dir, 'tmp');
    this.accounting = new BlobAccounting(deps.metrics);
    makePrivateDir(this.objectsDir);
    makePrivateDir(this.metaDir);
    // Temp files left by a crash were never renamed into place, so they hold nothing anyone saw.
    rmSync(this.tmpDir, { recursive: true, force: true });
    makePrivateDir(this.tmpDir);
    this.scan(this.objectsDir, '');
    this.accounting.publish();
  }

  private scan(path: string, prefix: string): void {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const key = prefix + entry.name;
      const full = join(path, entry.name);
      if (entry.isDirectory()) {
        this.scan(full, key + '/');
      } else if (entry.isFile()) {
        const size = statSync(full).size;
        this.sizes.set(key, size);
        this.accounting.objects++;
        this.accounting.bytes += size;
      }
    }
  }

  private objectPath(key: string): string {
    return join(this.objectsDir, ...key.split('/'));
  }

  private metaPath(key: string): string {
    return join(this.metaDir, ...key.split('/')) + '.json';
  }

  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  async put(key: string, bytes: Buffer, contentType: string): Promise<{ etag: string }> {
    if (this.closed) throw closedError();
    checkPut(key, bytes, contentType);
    const etag = etagOf(bytes);
    // Copied now, so a caller reusing its buffer while the write waits cannot change the object.
    const data = Buffer.from(bytes);
    return this.exclusive(key, async () => {
      const objectPath = this.objectPath(key);
      const metaPath = this.metaPath(key);
      const tmpData = join(this.tmpDir, `${process.pid}-${this.tmpSeq++}.data`);
      const tmpMeta = join(this.tmpDir, `${process.pid}-${this.tmpSeq++}.meta`);
      try {
        await Promise.all([mkdir(dirname(objectPath), { recursive: true, mode: DIR_MODE }), mkdir(dirname(metaPath), { recursive: true, mode: DIR_MODE })]);
        await Promise.all([writeFile(tmpData, data, { mode: FILE_MODE }), writeFile(tmpMeta, JSON.stringify({ contentType }), { mode: FILE_MODE })]);
        await rename(tmpMeta, metaPath);
        await rename(tmpData, objectPath);
      } catch (err) {
        await Promise.all([unlink(tmpData).catch(() => {}), unlink(tmpMeta).catch(() => {})]);
        // S3 lets "a" and "a/b" coexist; a file system cannot, since "a" would be both file and directory.
        if (isErrno(err, 'EISDIR', 'ENOTDIR', 'EEXIST', 'ENOTEMPTY')) {
          throw simError('SG_ERR_INVALID_PARAM', `blob key ${JSON.stringify(key)} collides with a key that is its prefix or extends it`, { key });
        }
        throw err;
      }
      const previous = this.sizes.get(key);
      this.sizes.set(key, data.length);
      this.accounting.written(data.length, previous);
      return { etag };
    });
  }

  async get(key: string): Promise<BlobObject | null> {
    if (this.closed) throw closedError();
    validateKey(key);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.objectPath(key));
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw err;
      this.accounting.read(null);
      return null;
    }
    let contentType = contentTypeFromKey(key);
    try {
      const meta = JSON.parse(await readFile(this.metaPath(key), 'utf8')) as { contentType?: unknown };
      if (typeof meta.contentType === 'string') contentType = meta.contentType;
    } catch {
      // A missing or torn sidecar (a crash between the two renames) falls back to the extension.
    }
    this.accounting.read(bytes.length);
    return { bytes, contentType, etag: etagOf(bytes) };
  }

  async delete(key: string): Promise<boolean> {
    if (this.closed) throw closedError();
    validateKey(key);
    return this.exclusive(key, async () => {
      let found = true;
      try {
        await unlink(this.objectPath(key));
      } catch (err) {
        if (!isErrno(err, 'ENOENT', 'ENOTDIR', 'EISDIR', 'EPERM')) throw err;
        found = false;
      }
      await unlink(this.metaPath(key)).catch(() => {});
      // Empty key directories are left in place: removing them could race a put of a sibling key.
      const previous = found ? this.sizes.get(key) : undefined;
      if (found) this.sizes.delete(key);
      this.accounting.deleted(found ? (previous ?? 0) : undefined);
      return found;
    });
  }

  stats(): { objects: number; bytes: number } {
    return { objects: this.accounting.objects, bytes: this.accounting.bytes };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.tails.values()]);
  }
}

/** The store a topology uses: files under `<dataDir>/blobs` when there is a data dir, memory otherwise. */
export function createBlobStore(dataDir: string | undefined, deps: { metrics: Metrics }): BlobStore {
  return dataDir ? new DirBlobStore(join(dataDir, 'blobs'), deps) : new MemoryBlobStore(deps);
}

