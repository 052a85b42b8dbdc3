// The resize job's work: an upload is checked (is it a whole JPEG or PNG of sane size?) before it is
// accepted, and later cut into Instagram's three square JPEGs — 150, 306 and 612 pixels a side.

import sharp, { type Metadata, type SharpOptions } from 'sharp';
import { isSimError, simError } from '../engine/errors.ts';

export interface ProbedImage {
  format: 'jpeg' | 'png';
  /** As displayed, after the EXIF orientation is applied (px). */
  width: number;
  height: number;
}

/** thumbnail, low_resolution, standard_resolution (px a side). */
export const VARIANT_SIZES = [150, 306, 612] as const;

/** The largest variant's side, which the smaller ones are cut from (px). */
const LARGEST_SIDE: number = VARIANT_SIZES[VARIANT_SIZES.length - 1]!;

/** Longest accepted side (px). */
export const MAX_IMAGE_SIDE_PX = 10_000;
/**
 * Most pixels sharp will decode (px). Above any 2012 camera (36 MP) and well under what fits in
 * memory: a 50 MP RGBA decode is 200 MB. Stops decompression bombs, whose few kilobytes of PNG
 * claim gigapixels, from being decoded at all.
 */
export const MAX_IMAGE_PIXELS = 50_000_000;
/** JPEG quality of the variants (1–100). */
const VARIANT_QUALITY = 85;
/** Side of the throwaway decode that proves the whole file is readable (px). */
const DECODE_CHECK_PX = 64;

/**
 * 'error' rather than sharp's default 'warning': truncation and corrupt data abort, but the
 * harmless warnings real phone JPEGs often carry ("extraneous bytes before marker") do not.
 */
const INPUT_OPTIONS: SharpOptions = { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS };

const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function badImage(reason: string, details?: Record<string, unknown>) {
  return simError('SG_ERR_BAD_IMAGE', `not a valid JPEG or PNG image: ${reason}`, { reason, ...details });
}

/** The format the first bytes claim; anything else is refused before a decoder sees it. */
function sniff(bytes: Buffer): 'jpeg' | 'png' {
  if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw badImage('empty upload');
  if (bytes.length >= JPEG_MAGIC.length && bytes.subarray(0, JPEG_MAGIC.length).equals(JPEG_MAGIC)) return 'jpeg';
  if (bytes.length >= PNG_MAGIC.length && bytes.subarray(0, PNG_MAGIC.length).equals(PNG_MAGIC)) return 'png';
  throw badImage('unrecognised format (only JPEG and PNG are accepted)');
}

/** Any sharp failure on untrusted bytes is the upload's fault, not ours. */
function asBadImage(err: unknown): Error {
  if (isSimError(err)) return err;
  return badImage(err instanceof Error ? err.message : String(err));
}

/** Header checks only: the format agrees with the magic bytes and the dimensions are sane. */
async function inspect(bytes: Buffer): Promise<ProbedImage> {
  const format = sniff(bytes);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, INPUT_OPTIONS).metadata();
  } catch (err) {
    throw asBadImage(err);
  }
  if (meta.format !== format) throw badImage(`header says ${format} but the decoder found ${meta.format}`);
  const { width, height } = meta;
  if (!(width > 0 && height > 0)) throw badImage('zero-sized image', { width, height });
  if (width > MAX_IMAGE_SIDE_PX || height > MAX_IMAGE_SIDE_PX) {
    throw badImage(`dimensions ${width}x${height} exceed ${MAX_IMAGE_SIDE_PX} px a side`, { width, height });
  }
  return { format, width: meta.autoOrient?.width ?? width, height: meta.autoOrient?.height ?? height };
}

export async function probeImage(bytes: Buffer, maxBytes: number): Promise<ProbedImage> {
  return (await checkUpload(bytes, maxBytes, false)).probed;
}

/** The largest variant's square as raw pixels (oriented, on white, sRGB, 8 bits): what the three JPEGs are encoded from. */
export interface VariantPixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/**
 * Longest side over shortest of an image whose whole decode, scaled to cover the largest variant,
 * is kept for the variants (ratio). At 4, the decode holds at most 4 × 612² pixels (4.5 MB);
 * longer images are checked with the small decode and decoded again by the resize job.
 */
const DECODE_ONCE_MAX_ASPECT = 4;

/**
 * probeImage, and for images of ordinary proportions the pixels the variants are cut from: the
 * check's decode of every byte is then the variants' decode too, so an upload is decoded once
 * (renderVariants(bytes) and variantsFromPixels(pixels) make the same three JPEGs). The whole
 * image is decoded (scaled to cover the square, not cropped to it), so a cut-off or corrupt file
 * fails here as it does in the small decode.
 */
export async function probeAndDecode(bytes: Buffer, maxBytes: number): Promise<{ probed: ProbedImage; pixels: VariantPixels | null }> {
  return checkUpload(bytes, maxBytes, true);
}

async function checkUpload(bytes: Buffer, maxBytes: number, keepPixels: boolean): Promise<{ probed: ProbedImage; pixels: VariantPixels | null }> {
  if (!(Number.isFinite(maxBytes) && maxBytes >= 0)) throw new RangeError(`maxBytes must be a non-negative number, got ${maxBytes}`);
  // Size first: it costs nothing and an oversized upload should say so whatever it contains.
  if (Buffer.isBuffer(bytes) && bytes.length > maxBytes) {
    throw simError('SG_ERR_UPLOAD_TOO_LARGE', `upload of ${bytes.length} bytes exceeds ${maxBytes}`, { bytes: bytes.length, maxBytes });
  }
  const probed = await inspect(bytes);
  if (keepPixels && Math.max(probed.width, probed.height) <= DECODE_ONCE_MAX_ASPECT * Math.min(probed.width, probed.height)) {
    return { probed, pixels: await decodeToSquare(bytes) };
  }
  // Headers can be whole while the pixels are not (a cut-off upload). Decoding to a tiny size
  // reads every byte of entropy-coded data but, with JPEG shrink-on-load, costs ~3 ms not ~45.
  try {
    await sharp(bytes, INPUT_OPTIONS).resize(DECODE_CHECK_PX, DECODE_CHECK_PX, { fit: 'inside' }).raw().toBuffer();
  } catch (err) {
    throw asBadImage(err);
  }
  return { probed, pixels: null };
}

/**
 * The whole image scaled to cover the largest square ('outside': its shorter side is 612), then
 * its centre square cut out as sharp's `cover` crop cuts it ((in − out + 1) / 2 from each edge).
 */
async function decodeToSquare(bytes: Buffer): Promise<VariantPixels> {
  const side = LARGEST_SIDE;
  let data: Buffer;
  let info: { width: number; height: number; channels: number };
  try {
    ({ data, info } = await sharp(bytes, INPUT_OPTIONS)
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .resize(side, side, { fit: 'outside' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw asBadImage(err);
  }
  const channels = info.channels as VariantPixels['channels'];
  if (info.width < side || info.height < side) throw badImage(`decoded to ${info.width}x${info.height}, smaller than ${side} px a side`);
  if (info.width === side && info.height === side) return { data, width: side, height: side, channels };
  const left = (info.width - side + 1) >> 1;
  const top = (info.height - side + 1) >> 1;
  const row = side * channels;
  const square = Buffer.allocUnsafe(side * row);
  for (let y = 0; y < side; y++) {
    const from = ((top + y) * info.width + left) * channels;
    data.copy(square, y * row, from, from + row);
  }
  return { data: square, width: side, height: side, channels };
}

/**
 * Decodes once to the largest square (612, oriented, transparency on white, sRGB, 8 bits) and
 * cuts the smaller ones from those pixels: on a 1080 px JPEG this takes ~12 ms per image under
 * parallel load, against ~15 ms for three pipelines that each decode the original.
 */
export async function makeVariants(bytes: Buffer): Promise<{ 150: Buffer; 306: Buffer; 612: Buffer }> {
  await inspect(bytes);
  return renderVariants(bytes);
}

/**
 * The three sizes alone, with no header check first: what makeVariants does once the image is
 * known to be sane (and what `scalegram bench` measures as the image library's own rate).
 */
export async function renderVariants(bytes: Buffer): Promise<{ 150: Buffer; 306: Buffer; 612: Buffer }> {
  const largest = VARIANT_SIZES[VARIANT_SIZES.length - 1];
  try {
    const { data, info } = await sharp(bytes, INPUT_OPTIONS)
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .resize(largest, largest, { fit: 'cover', position: 'centre' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return await variantsFromPixels({ data, width: info.width, height: info.height, channels: info.channels as VariantPixels['channels'] });
  } catch (err) {
    throw asBadImage(err);
  }
}

/** The three JPEGs from the largest square's pixels (probeAndDecode's, or renderVariants' own decode). */
export async function variantsFromPixels(pixels: VariantPixels): Promise<{ 150: Buffer; 306: Buffer; 612: Buffer }> {
  const largest = VARIANT_SIZES[VARIANT_SIZES.length - 1];
  const raw = { raw: { width: pixels.width, height: pixels.height, channels: pixels.channels } };
  try {
    const [small, medium, large] = await Promise.all(
      VARIANT_SIZES.map((size) => {
        const pipeline = sharp(pixels.data, raw);
        if (size !== largest) pipeline.resize(size, size, { fit: 'fill' });
        return pipeline.jpeg({ quality: VARIANT_QUALITY }).toBuffer();
      }),
    );
    return { 150: small!, 306: medium!, 612: large! };
  } catch (err) {
    throw asBadImage(err);
  }
}
