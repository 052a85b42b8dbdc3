// Both blob stores behind one suite: put/get/delete, counted bytes and objects, stable ETags and
// refused keys; then what only the directory store promises: atomic writes and surviving a reopen.

import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createBlobStore, DirBlobStore, MemoryBlobStore, type BlobStore } from '../sim/parts/blob-store.ts';
import { VirtualClock } from '../sim/engine/clock.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { Metrics } from '../sim/observability/metrics.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'blobs-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const md5Etag = (b: Buffer) => `"${createHash('md5').update(b).digest('hex')}"`;
const KEY = 'media/1234567890123456789/150.jpg';

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return isSimError(err) ? err.code : `not a SimError: ${String(err)}`;
  }
  return undefined;
}

const kinds: Array<[string, (metrics: Metrics) => BlobStore]> = [
  ['MemoryBlobStore', (metrics) => new MemoryBlobStore({ metrics })],
  ['DirBlobStore', (metrics) => new DirBlobStore(tempDir(), { metrics })],
];

describe.each(kinds)('%s', (_name, make) => {
  function setup() {
    const metrics = new Metrics(new VirtualClock());
    return { store: make(metrics), metrics };
  }

  it('returns what was put, with its content type and an MD5 ETag, and null for a missing key', async () => {
    const { store } = setup();
    const bytes = Buffer.from('not really a jpeg, but bytes all the same');
    const { etag } = await store.put(KEY, bytes, 'image/jpeg');
    expect(etag).toBe(md5Etag(bytes));
    const got = await store.get(KEY);
    expect(got).not.toBeNull();
    expect(got!.bytes.equals(bytes)).toBe(true);
    expect(got!.contentType).toBe('image/jpeg');
    expect(got!.etag).toBe(etag);
    expect(await store.get('media/1/612.jpg')).toBeNull();
  });

  it('gives the same bytes the same ETag on every put and a different ETag to different bytes', async () => {
    const { store } = setup();
    const a = Buffer.from([1, 2, 3, 4]);
    const first = await store.put('a/1.bin', a, 'application/octet-stream');
    const second = await store.put('b/2.bin', Buffer.from(a), 'application/octet-stream');
    const third = await store.put('a/1.bin', Buffer.from([1, 2, 3, 5]), 'application/octet-stream');
    expect(second.etag).toBe(first.etag);
    expect(third.etag).not.toBe(first.etag);
    expect((await store.get('a/1.bin'))!.etag).toBe(third.etag);
  });

  it('counts objects and bytes through puts, overwrites and deletes, in stats and gauges', async () => {
    const { store, metrics } = setup();
    await store.put('media/1/150.jpg', Buffer.alloc(100), 'image/jpeg');
    await store.put('media/1/306.jpg', Buffer.alloc(300), 'image/jpeg');
    await store.put('media/1/150.jpg', Buffer.alloc(150), 'image/jpeg'); // overwrite: +50, not +150
    expect(store.stats()).toEqual({ objects: 2, bytes: 450 });
    expect(metrics.gauge('blob_objects', {})).toBe(2);
    expect(metrics.gauge('blob_bytes', {})).toBe(450);

    expect(await store.delete('media/1/306.jpg')).toBe(true);
    expect(await store.delete('media/1/306.jpg')).toBe(false);
    expect(store.stats()).toEqual({ objects: 1, bytes: 150 });
    expect(metrics.gauge('blob_bytes', {})).toBe(150);
    expect(await store.get('media/1/306.jpg')).toBeNull();
  });

  it('counts operations, misses and bytes moved', async () => {
    const { store, metrics } = setup();
    await store.put(KEY, Buffer.alloc(1000), 'image/jpeg');
    await store.put(KEY, Buffer.alloc(500), 'image/jpeg');
    await store.get(KEY);
    await store.get(KEY);
    await store.get('media/9/150.jpg');
    await store.delete(KEY);
    await store.delete(KEY);
    expect(metrics.value('blob_ops', { op: 'put' })).toBe(2);
    expect(metrics.value('blob_ops', { op: 'get' })).toBe(2);
    expect(metrics.value('blob_ops', { op: 'get', result: 'miss' })).toBe(1);
    expect(metrics.sum('blob_ops', { op: 'get' })).toBe(3);
    expect(metrics.value('blob_ops', { op: 'delete' })).toBe(1);
    expect(metrics.value('blob_ops', { op: 'delete', result: 'miss' })).toBe(1);
    expect(metrics.value('blob_bytes_written')).toBe(1500);
    expect(metrics.value('blob_bytes_read')).toBe(1000);
  });

  it('refuses keys with "..", a leading "/", empty segments or other characters with SG_ERR_INVALID_PARAM', async () => {
    const { store } = setup();
    const bad = ['', '../etc/passwd', 'media/../../x', 'a..b', '/media/1.jpg', 'media//1.jpg', 'media/1.jpg/', './x', 'a/./b', 'a b', 'caf\u00e9.jpg', 'a\\b', 'a\0b', 'x'.repeat(1025)];
    for (const key of bad) {
      expect(await codeOf(store.put(key, Buffer.from('x'), 'text/plain')), key).toBe('SG_ERR_INVALID_PARAM');
      expect(await codeOf(store.get(key)), key).toBe('SG_ERR_INVALID_PARAM');
      expect(await codeOf(store.delete(key)), key).toBe('SG_ERR_INVALID_PARAM');
    }
    expect(await codeOf(store.put('ok/key_1-2.jpg', Buffer.from('x'), ''))).toBe('SG_ERR_INVALID_PARAM');
    expect(store.stats()).toEqual({ objects: 0, bytes: 0 });
  });

  it('keeps its own copy, so a caller reusing its buffer cannot change a stored object', async () => {
    const { store } = setup();
    const bytes = Buffer.from('original');
    await store.put(KEY, bytes, 'text/plain');
    bytes.write('CHANGED!');
    const got = await store.get(KEY);
    got!.bytes.write('mutated!');
    expect((await store.get(KEY))!.bytes.toString()).toBe('original');
  });

  it('leaves exactly the last of concurrent puts to one key, counted once', async () => {
    const { store } = setup();
    // Big writes first: unordered, the small last one would land before them and be overwritten.
    const sizes = [8_000_000, 10, 4_000_000, 30, 5];
    await Promise.all(sizes.map((n, i) => store.put(KEY, Buffer.alloc(n, i), 'application/octet-stream')));
    const got = await store.get(KEY);
    expect(got!.bytes.length).toBe(5);
    expect(got!.bytes[0]).toBe(4);
    expect(store.stats()).toEqual({ objects: 1, bytes: 5 });
  });

  it('refuses operations after close with SG_ERR_NODE_DOWN', async () => {
    const { store } = setup();
    await store.put(KEY, Buffer.from('x'), 'text/plain');
    await store.close();
    expect(await codeOf(store.get(KEY))).toBe('SG_ERR_NODE_DOWN');
    expect(await codeOf(store.put(KEY, Buffer.from('x'), 'text/plain'))).toBe('SG_ERR_NODE_DOWN');
  });
});

describe('DirBlobStore', () => {
  it('survives a reopen: bytes, content type, ETag and rebuilt stats', async () => {
    const dir = tempDir();
    const first = new DirBlobStore(dir, { metrics: new Metrics(new VirtualClock()) });
    const jpeg = Buffer.alloc(1234, 7);
    const { etag } = await first.put(KEY, jpeg, 'image/jpeg');
    await first.put('media/1/306.jpg', Buffer.alloc(66), 'image/x-custom');
    await first.put('media/1/612.jpg', Buffer.alloc(10), 'image/jpeg');
    await first.delete('media/1/612.jpg');
    await first.close();

    const metrics = new Metrics(new VirtualClock());
    const second = new DirBlobStore(dir, { metrics });
    expect(second.stats()).toEqual({ objects: 2, bytes: 1300 });
    expect(metrics.gauge('blob_objects', {})).toBe(2);
    expect(metrics.gauge('blob_bytes', {})).toBe(1300);
    const got = await second.get(KEY);
    expect(got!.bytes.equals(jpeg)).toBe(true);
    expect(got!.etag).toBe(etag);
    expect((await second.get('media/1/306.jpg'))!.contentType).toBe('image/x-custom');
    expect(await second.get('media/1/612.jpg')).toBeNull();
  });

  it('stores each object as a plain file under objects/ and leaves no temp files behind', async () => {
    const dir = tempDir();
    const store = new DirBlobStore(dir, { metrics: new Metrics(new VirtualClock()) });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`media/${i}/150.jpg`, Buffer.from(`img ${i}`), 'image/jpeg')));
    expect(readFileSync(join(dir, 'objects', 'media', '7', '150.jpg'), 'utf8')).toBe('img 7');
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it('falls back to the extension for the content type when a sidecar is missing', async () => {
    const dir = tempDir();
    const store = new DirBlobStore(dir, { metrics: new Metrics(new VirtualClock()) });
    await store.put('media/1/150.jpg', Buffer.from('x'), 'image/jpeg');
    await store.put('media/1/raw.bin', Buffer.from('y'), 'image/jpeg');
    rmSync(join(dir, 'meta'), { recursive: true });
    expect((await store.get('media/1/150.jpg'))!.contentType).toBe('image/jpeg');
    expect((await store.get('media/1/raw.bin'))!.contentType).toBe('application/octet-stream');
  });

  it('refuses a key that would need a file and a directory of the same name, leaving the first intact', async () => {
    const store = new DirBlobStore(tempDir(), { metrics: new Metrics(new VirtualClock()) });
    await store.put('media/1', Buffer.from('file'), 'text/plain');
    expect(await codeOf(store.put('media/1/150.jpg', Buffer.from('x'), 'image/jpeg'))).toBe('SG_ERR_INVALID_PARAM');
    expect((await store.get('media/1'))!.bytes.toString()).toBe('file');
    expect(store.stats()).toEqual({ objects: 1, bytes: 4 });
  });
});

describe('createBlobStore', () => {
  it('uses <dataDir>/blobs when given a data dir and memory otherwise', async () => {
    const dataDir = tempDir();
    const metrics = new Metrics(new VirtualClock());
    const onDisk = createBlobStore(dataDir, { metrics });
    expect(onDisk).toBeInstanceOf(DirBlobStore);
    await onDisk.put(KEY, Buffer.from('x'), 'image/jpeg');
    expect(existsSync(join(dataDir, 'blobs', 'objects', ...KEY.split('/')))).toBe(true);
    expect(createBlobStore(undefined, { metrics })).toBeInstanceOf(MemoryBlobStore);
  });
});
