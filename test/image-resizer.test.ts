// Upload checks and the three square variants, on images generated here with sharp (no binary
// fixtures): good JPEGs and PNGs pass, everything else is refused by code, bombs without decoding.

import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { isSimError } from '../sim/engine/errors.ts';
import { makeVariants, MAX_IMAGE_SIDE_PX, probeAndDecode, probeImage, renderVariants, VARIANT_SIZES, variantsFromPixels } from '../sim/parts/image-resizer.ts';

const MAX_BYTES = 8 * 1024 * 1024;
type Rgb = [number, number, number];
const RED: Rgb = [220, 30, 30];
const GREEN: Rgb = [30, 200, 30];
const BLUE: Rgb = [30, 30, 220];
const rgb = ([r, g, b]: Rgb) => ({ r, g, b });

/** A width×height image of `fill`, with optional solid rectangles on top. */
function canvas(width: number, height: number, fill: Rgb, rects: Array<{ left: number; top: number; width: number; height: number; colour: Rgb }> = []) {
  return sharp({ create: { width, height, channels: 3, background: rgb(fill) } }).composite(
    rects.map((r) => ({ input: { create: { width: r.width, height: r.height, channels: 3 as const, background: rgb(r.colour) } }, left: r.left, top: r.top })),
  );
}

/** 1000×700: a blue centre with 150 px green bands left and right, which a centre crop must cut. */
const photoJpeg = () =>
  canvas(1000, 700, BLUE, [
    { left: 0, top: 0, width: 150, height: 700, colour: GREEN },
    { left: 850, top: 0, width: 150, height: 700, colour: GREEN },
  ])
    .jpeg({ quality: 90 })
    .toBuffer();

const photoPng = () => canvas(640, 480, RED, [{ left: 100, top: 100, width: 200, height: 200, colour: BLUE }]).png().toBuffer();

async function pixel(image: Buffer, x: number, y: number): Promise<Rgb> {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

function expectColour(actual: Rgb, expected: Rgb, tolerance = 30) {
  for (let c = 0; c < 3; c++) expect(Math.abs(actual[c]! - expected[c]!), `channel ${c} of ${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance);
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return isSimError(err) ? err.code : `not a SimError: ${String(err)}`;
  }
  return undefined;
}

/** A PNG whose header claims `width`×`height`, with one tiny deflated IDAT: a bomb's shape. */
function craftedPng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body) >>> 0, 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1 + width * 3))), chunk('IEND', Buffer.alloc(0))]);
}

/** A valid JPEG with the dimensions in its SOF0 header rewritten. */
async function jpegClaiming(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(await canvas(64, 64, RED).jpeg().toBuffer());
  let at = -1;
  for (let i = 2; i < jpeg.length - 1; i++) {
    if (jpeg[i] === 0xff && jpeg[i + 1] === 0xc0) {
      at = i;
      break;
    }
  }
  expect(at).toBeGreaterThan(0);
  jpeg.writeUInt16BE(height, at + 5);
  jpeg.writeUInt16BE(width, at + 7);
  return jpeg;
}

describe('probeImage', () => {
  it('reports format and size of a JPEG and a PNG', async () => {
    expect(await probeImage(await photoJpeg(), MAX_BYTES)).toEqual({ format: 'jpeg', width: 1000, height: 700 });
    expect(await probeImage(await photoPng(), MAX_BYTES)).toEqual({ format: 'png', width: 640, height: 480 });
  });

  it('reports the size as displayed, after the EXIF orientation', async () => {
    const rotated = await canvas(200, 100, RED).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(await probeImage(rotated, MAX_BYTES)).toEqual({ format: 'jpeg', width: 100, height: 200 });
  });

  it('refuses text, SVG, GIF and WebP by their first bytes with SG_ERR_BAD_IMAGE', async () => {
    const gif = await canvas(32, 32, RED).gif().toBuffer();
    const webp = await canvas(32, 32, RED).webp().toBuffer();
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    for (const [name, bytes] of Object.entries({ text: Buffer.from('hello, this is not a photo\n'), svg, gif, webp })) {
      expect(await codeOf(probeImage(bytes, MAX_BYTES)), name).toBe('SG_ERR_BAD_IMAGE');
    }
  });

  it('refuses an empty buffer and bare magic bytes with SG_ERR_BAD_IMAGE', async () => {
    expect(await codeOf(probeImage(Buffer.alloc(0), MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
    expect(await codeOf(probeImage(Buffer.from([0xff, 0xd8, 0xff]), MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
    expect(await codeOf(probeImage(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
  });

  it('refuses a JPEG and a PNG cut in half, though their headers are whole', async () => {
    const jpeg = await photoJpeg();
    const png = await photoPng();
    const halfJpeg = jpeg.subarray(0, jpeg.length >> 1);
    const halfPng = png.subarray(0, png.length >> 1);
    expect((await sharp(halfJpeg).metadata()).width).toBe(1000); // the header alone looks fine
    expect(await codeOf(probeImage(halfJpeg, MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
    expect(await codeOf(probeImage(halfPng, MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
  });

  it('refuses more than maxBytes with SG_ERR_UPLOAD_TOO_LARGE, whatever the bytes, and accepts exactly maxBytes', async () => {
    const jpeg = await photoJpeg();
    expect(await codeOf(probeImage(jpeg, jpeg.length - 1))).toBe('SG_ERR_UPLOAD_TOO_LARGE');
    expect(await codeOf(probeImage(Buffer.alloc(MAX_BYTES + 1, 'a'), MAX_BYTES))).toBe('SG_ERR_UPLOAD_TOO_LARGE');
    expect((await probeImage(jpeg, jpeg.length)).format).toBe('jpeg');
  });

  it('refuses a PNG header claiming 100000×100000 within a second, without decoding it', async () => {
    const t0 = performance.now();
    expect(await codeOf(probeImage(craftedPng(100_000, 100_000), MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
    expect(await codeOf(makeVariants(craftedPng(100_000, 100_000)))).toBe('SG_ERR_BAD_IMAGE');
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('refuses a JPEG whose header claims 60000×60000', async () => {
    expect(await codeOf(probeImage(await jpegClaiming(60_000, 60_000), MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
  });

  it('refuses a real 7200×7200 PNG decompression bomb (~150 KB for 52 MP) within a second', async () => {
    const bomb = await sharp({ create: { width: 7200, height: 7200, channels: 3, background: '#000' } }).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(MAX_BYTES);
    const t0 = performance.now();
    expect(await codeOf(probeImage(bomb, MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it(`refuses a side longer than ${MAX_IMAGE_SIDE_PX} px even when the pixel count is small`, async () => {
    const strip = await canvas(MAX_IMAGE_SIDE_PX + 1, 4, RED).png().toBuffer();
    expect(await codeOf(probeImage(strip, MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
    const edge = await canvas(MAX_IMAGE_SIDE_PX, 4, RED).png().toBuffer();
    expect(await probeImage(edge, MAX_BYTES)).toEqual({ format: 'png', width: MAX_IMAGE_SIDE_PX, height: 4 });
  });
});

describe('makeVariants', () => {
  it('makes 150, 306 and 612 px square JPEGs from a 1000×700 JPEG', async () => {
    const variants = await makeVariants(await photoJpeg());
    expect(VARIANT_SIZES).toEqual([150, 306, 612]);
    for (const size of VARIANT_SIZES) {
      const meta = await sharp(variants[size]).metadata();
      expect({ format: meta.format, width: meta.width, height: meta.height, channels: meta.channels }).toEqual({ format: 'jpeg', width: size, height: size, channels: 3 });
    }
    expect(variants[150].length).toBeLessThan(variants[612].length);
  });

  it('crops the centre square, cutting the side bands of a landscape photo', async () => {
    const variants = await makeVariants(await photoJpeg());
    // The 150 px bands lie outside the central 700 px of 1000, so no corner may be green.
    for (const size of VARIANT_SIZES) {
      const edge = size - 3;
      for (const [x, y] of [[2, 2], [edge, 2], [2, edge], [edge, edge]] as const) expectColour(await pixel(variants[size], x, y), BLUE);
    }
  });

  it('turns a photo by its EXIF orientation before cropping', async () => {
    // Stored left half red, right half blue; orientation 6 shows it turned 90° clockwise,
    // so the left half becomes the top. Ignoring the tag would leave the top-right blue.
    const stored = await canvas(200, 200, BLUE, [{ left: 0, top: 0, width: 100, height: 200, colour: RED }]).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const { 150: thumb } = await makeVariants(stored);
    expectColour(await pixel(thumb, 140, 10), RED);
    expectColour(await pixel(thumb, 10, 140), BLUE);
  });

  it('puts a transparent PNG on white and scales a small greyscale JPEG up to full size', async () => {
    const clear = await sharp({ create: { width: 300, height: 300, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    expectColour(await pixel((await makeVariants(clear))[306], 150, 150), [255, 255, 255], 3);
    const grey = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#808080' } }).toColourspace('b-w').jpeg().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const meta = await sharp((await makeVariants(grey))[612]).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([612, 612, 3]);
  });

  it('refuses a GIF and a truncated JPEG with SG_ERR_BAD_IMAGE', async () => {
    const jpeg = await photoJpeg();
    expect(await codeOf(makeVariants(await canvas(32, 32, RED).gif().toBuffer()))).toBe('SG_ERR_BAD_IMAGE');
    expect(await codeOf(makeVariants(jpeg.subarray(0, jpeg.length >> 1)))).toBe('SG_ERR_BAD_IMAGE');
  });
});

describe('probeAndDecode (an upload decoded once)', () => {
  /** renderVariants' own decode: the 612 px cover square as raw pixels. */
  const coverSquare = (bytes: Buffer) =>
    sharp(bytes, { failOn: 'error' }).autoOrient().flatten({ background: '#ffffff' }).resize(612, 612, { fit: 'cover', position: 'centre' }).toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  /** Pixels no two of which are alike in a row, so an off-by-one crop shows. */
  const noise = (width: number, height: number, channels: 3 | 4) => {
    const b = Buffer.alloc(width * height * channels);
    for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
    return sharp(b, { raw: { width, height, channels } });
  };

  it('keeps exactly the pixels renderVariants decodes, so the variants are the same JPEGs', async () => {
    const images = [
      await photoJpeg(),
      await photoPng(),
      await noise(1001, 700, 3).jpeg().toBuffer(),
      await noise(700, 1001, 3).jpeg().toBuffer(),
      await noise(100, 200, 4).png().toBuffer(),
      await noise(200, 100, 3).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    ];
    for (const bytes of images) {
      const { data, info } = await coverSquare(bytes);
      const { pixels } = await probeAndDecode(bytes, MAX_BYTES);
      expect(pixels).not.toBeNull();
      expect([pixels!.width, pixels!.height, pixels!.channels]).toEqual([info.width, info.height, info.channels]);
      expect(pixels!.data.equals(data)).toBe(true);
      const [a, b] = await Promise.all([variantsFromPixels(pixels!), renderVariants(bytes)]);
      for (const size of VARIANT_SIZES) expect(a[size].equals(b[size])).toBe(true);
    }
  });

  it('refuses a cut-off file whose lost rows lie outside the centre square', async () => {
    const tall = await noise(700, 2000, 3).jpeg().toBuffer();
    for (const share of [0.9, 0.99]) expect(await codeOf(probeAndDecode(tall.subarray(0, Math.floor(tall.length * share)), MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
  });

  it('checks a very long image with the small decode and keeps no pixels (the job decodes it)', async () => {
    const long = await noise(2000, 300, 3).jpeg().toBuffer();
    expect(await probeAndDecode(long, MAX_BYTES)).toEqual({ probed: { format: 'jpeg', width: 2000, height: 300 }, pixels: null });
    expect(await codeOf(probeAndDecode(long.subarray(0, long.length >> 1), MAX_BYTES))).toBe('SG_ERR_BAD_IMAGE');
  });
});
