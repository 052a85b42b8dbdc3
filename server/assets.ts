// Bytes the server itself serves: the favicon browsers ask for on every page, and the default
// avatar for users without a profile picture. Made once per process with sharp, then kept.

import { createHash } from 'node:crypto';
import sharp from 'sharp';

/** CDN key of the default avatar; /cdn/<key> serves it without asking the store. */
export const DEFAULT_AVATAR_KEY = '_static/default-avatar.jpg';

export interface StaticAsset {
  bytes: Buffer;
  contentType: string;
  etag: string;
}

export interface Assets {
  favicon: StaticAsset;
  defaultAvatar: StaticAsset;
}

const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">
<defs><linearGradient id="g" x1="0" y1="1" x2="1" y2="0"><stop offset="0" stop-color="#f58529"/><stop offset=".5" stop-color="#dd2a7b"/><stop offset="1" stop-color="#515bd4"/></linearGradient></defs>
<rect x="1" y="1" width="30" height="30" rx="8" fill="url(#g)"/>
<rect x="7" y="7" width="18" height="18" rx="5" fill="none" stroke="#fff" stroke-width="2.5"/>
<circle cx="16" cy="16" r="4.2" fill="none" stroke="#fff" stroke-width="2.5"/>
<circle cx="21.5" cy="10.5" r="1.3" fill="#fff"/></svg>`;

const AVATAR_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="150" height="150" viewBox="0 0 150 150">
<rect width="150" height="150" fill="#dbdbdb"/>
<circle cx="75" cy="58" r="28" fill="#fafafa"/>
<path d="M22 150c4-34 26-52 53-52s49 18 53 52z" fill="#fafafa"/></svg>`;

function asset(bytes: Buffer, contentType: string): StaticAsset {
  return { bytes, contentType, etag: `"${createHash('sha1').update(bytes).digest('base64url')}"` };
}

/** Wraps one PNG in an ICO container (PNG entries are valid ICO images since Windows Vista). */
function icoFromPng(png: Buffer, size: number): Buffer {
  const header = Buffer.alloc(22);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(1, 4); // one image
  header.writeUInt8(size >= 256 ? 0 : size, 6); // width (0 = 256)
  header.writeUInt8(size >= 256 ? 0 : size, 7); // height
  header.writeUInt8(0, 8); // no palette
  header.writeUInt8(0, 9); // reserved
  header.writeUInt16LE(1, 10); // colour planes
  header.writeUInt16LE(32, 12); // bits per pixel
  header.writeUInt32LE(png.length, 14); // image size
  header.writeUInt32LE(22, 18); // image offset
  return Buffer.concat([header, png]);
}

let cached: Promise<Assets> | null = null;

export function loadAssets(): Promise<Assets> {
  cached ??= (async () => {
    const [png, avatar] = await Promise.all([
      sharp(Buffer.from(FAVICON_SVG)).resize(32, 32).png().toBuffer(),
      sharp(Buffer.from(AVATAR_SVG)).resize(150, 150).jpeg({ quality: 80 }).toBuffer(),
    ]);
    return { favicon: asset(icoFromPng(png, 32), 'image/x-icon'), defaultAvatar: asset(avatar, 'image/jpeg') };
  })();
  cached.catch(() => {
    cached = null;
  });
  return cached;
}
