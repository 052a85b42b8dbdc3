import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { errorType, get, image, makeEnv, pathOf, relate, signup, upload, uploadRequest, type Account, type TestEnv, type V1MediaLike } from './helpers/app.ts';

let env: TestEnv;
let owner: Account;
let fan: Account;
let other: Account;
let photo: V1MediaLike;

const MEDIA_KEYS = ['attribution', 'caption', 'comments', 'created_time', 'filter', 'id', 'images', 'likes', 'link', 'location', 'tags', 'type', 'user', 'user_has_liked', 'users_in_photo'];
const SHORT_USER_KEYS = ['full_name', 'id', 'profile_picture', 'username'];

beforeAll(async () => {
  env = await makeEnv();
  owner = await signup(env.app, 'media_owner');
  fan = await signup(env.app, 'media_fan');
  other = await signup(env.app, 'media_other');
  await relate(env.app, fan, owner.id, 'follow');
  photo = await upload(env.app, owner, { caption: 'Golden Gate at dusk #SF #bridge', lat: 37.8199, lng: -122.4783, locationName: 'Golden Gate Bridge', filter: 'Valencia' });
  await env.topology.idle();
});
afterAll(async () => {
  await env.close();
});

describe('POST /v1/media', () => {
  it('answers the v1 Media object, exactly', async () => {
    expect(Object.keys(photo).sort()).toEqual(MEDIA_KEYS);
    expect(photo).toMatchObject({
      type: 'image',
      filter: 'Valencia',
      tags: ['sf', 'bridge'],
      user_has_liked: false,
      users_in_photo: [],
      attribution: null,
      likes: { count: 0, data: [] },
      comments: { count: 0, data: [] },
      location: { name: 'Golden Gate Bridge', latitude: 37.8199, longitude: -122.4783 },
    });
    expect(Object.keys(photo.user).sort()).toEqual(SHORT_USER_KEYS);
    expect(photo.user.id).toBe(owner.id);
    expect(photo.id).toMatch(/^\d+$/);
    expect(photo.created_time).toMatch(/^\d+$/);
    const caption = photo.caption as Record<string, unknown>;
    expect(Object.keys(caption).sort()).toEqual(['created_time', 'from', 'id', 'text']);
    expect(caption.text).toBe('Golden Gate at dusk #SF #bridge');
    expect(photo.link).toMatch(/^http:\/\/localhost(:\d+)?\/p\/[A-Za-z0-9_-]+\/$/);
    const sizes = Object.entries(photo.images).map(([k, v]) => [k, v.width, v.height, Object.keys(v).sort().join()]);
    expect(sizes).toEqual([
      ['thumbnail', 150, 150, 'height,url,width'],
      ['low_resolution', 306, 306, 'height,url,width'],
      ['standard_resolution', 612, 612, 'height,url,width'],
    ]);
    for (const v of Object.values(photo.images)) expect(v.url).toMatch(/^http:\/\/localhost(:\d+)?\/cdn\//);
  });

  it('accepts a PNG, with no caption or location', async () => {
    const res = await env.app.inject(uploadRequest(owner.token, {}, await image({ format: 'png', color: '#ff0000' })));
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ caption: null, location: null, tags: [], filter: 'Normal' });
  });

  it('refuses uploads that are not a JPEG or PNG, or are broken, with APIInvalidParametersError', async () => {
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;', 'binary');
    const truncated = (await image()).subarray(0, 60);
    const fakeJpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('not really a jpeg at all '.repeat(10))]);
    for (const [name, bytes] of [['text', Buffer.from('hello world, not an image')], ['gif', gif], ['truncated jpeg', truncated], ['fake jpeg', fakeJpeg], ['empty', Buffer.alloc(0)]] as const) {
      const res = await env.app.inject(uploadRequest(owner.token, { caption: 'bad' }, bytes));
      expect(res.statusCode, name).toBe(400);
      expect(errorType(res), name).toBe('APIInvalidParametersError');
    }
  });

  it('refuses an upload over blobs.maxUploadBytes with a 400 and stores nothing', async () => {
    const before = (await get(env.app, '/v1/users/self', owner)).body.data as { counts: { media: number } };
    const max = env.topology.config.blobs.maxUploadBytes;
    const big = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#888' } }).jpeg({ quality: 100 }).toBuffer();
    const huge = big.length > max ? big : Buffer.concat([big, Buffer.alloc(max + 1024 - big.length)]);
    const res = await env.app.inject(uploadRequest(owner.token, { caption: 'too big' }, huge));
    expect(res.statusCode).toBe(400);
    expect(errorType(res)).toBe('APIInvalidParametersError');
    const after = (await get(env.app, '/v1/users/self', owner)).body.data as { counts: { media: number } };
    expect(after.counts.media).toBe(before.counts.media);
    const recent = await get(env.app, '/v1/users/self/media/recent?count=100', owner);
    expect((recent.body.data as Array<{ caption: { text: string } | null }>).some((m) => m.caption?.text === 'too big')).toBe(false);
  });

  it('refuses bad fields: a missing photo, a stray file, lone or out-of-range coordinates, unknown fields', async () => {
    const jpeg = await image();
    const cases: Array<[string, ReturnType<typeof uploadRequest>]> = [
      ['no photo', uploadRequest(owner.token, { caption: 'x' })],
      ['lat without lng', uploadRequest(owner.token, { lat: 10 }, jpeg)],
      ['lat out of range', uploadRequest(owner.token, { lat: 95, lng: 10 }, jpeg)],
      ['lng not a number', { ...uploadRequest(owner.token, { lat: 10 }, jpeg) }],
      ['location_name without coordinates', uploadRequest(owner.token, { locationName: 'Nowhere' }, jpeg)],
    ];
    cases[3]![1] = uploadRequest(owner.token, { lat: 10, lng: 'east' as unknown as number }, jpeg);
    for (const [name, req] of cases) {
      const res = await env.app.inject(req);
      expect(res.statusCode, name).toBe(400);
      expect(errorType(res), name).toBe('APIInvalidParametersError');
    }
    const { multipart } = await import('./helpers/app.ts');
    const stray = multipart({ caption: 'x' }, [{ field: 'avatar', filename: 'a.jpg', contentType: 'image/jpeg', bytes: jpeg }]);
    const res = await env.app.inject({ method: 'POST', url: `/v1/media?access_token=${owner.token}`, payload: stray.payload, headers: stray.headers });
    expect(res.statusCode).toBe(400);
    const two = multipart({}, [
      { field: 'photo', filename: 'a.jpg', contentType: 'image/jpeg', bytes: jpeg },
      { field: 'photo', filename: 'b.jpg', contentType: 'image/jpeg', bytes: jpeg },
    ]);
    const twoRes = await env.app.inject({ method: 'POST', url: `/v1/media?access_token=${owner.token}`, payload: two.payload, headers: two.headers });
    expect(twoRes.statusCode).toBe(400);
  });

  it('refuses a JSON body, a malformed multipart body and an upload without a token', async () => {
    const json = await env.app.inject({ method: 'POST', url: `/v1/media?access_token=${owner.token}`, payload: { photo: 'abc' } });
    expect(errorType(json)).toBe('APIInvalidParametersError');
    const broken = await env.app.inject({ method: 'POST', url: `/v1/media?access_token=${owner.token}`, headers: { 'content-type': 'multipart/form-data; boundary=zzz' }, payload: '--zzz\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n\xff\xd8\xff' });
    expect(broken.statusCode).toBe(400);
    expect(errorType(broken)).toBe('APIInvalidParametersError');
    const noBoundary = await env.app.inject({ method: 'POST', url: `/v1/media?access_token=${owner.token}`, headers: { 'content-type': 'multipart/form-data' }, payload: 'abc' });
    expect(noBoundary.statusCode).toBe(400);
    const anon = await env.app.inject(uploadRequest(null, {}, await image()));
    expect(anon.statusCode).toBe(401);
  });
});

describe('GET and DELETE /v1/media/{id}', () => {
  it('reads a media by id and by shortcode, with user_has_liked, likers and comments', async () => {
    await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/likes?access_token=${fan.token}` });
    await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/comments?access_token=${fan.token}`, payload: { text: 'wow' } });
    const byId = await get(env.app, `/v1/media/${photo.id}`, fan);
    expect(byId.status).toBe(200);
    const m = byId.body.data as { user_has_liked: boolean; likes: unknown; comments: { count: number; data: unknown[] } };
    expect(Object.keys(m).sort()).toEqual(MEDIA_KEYS);
    expect(m.user_has_liked).toBe(true);
    expect(m.likes).toEqual({ count: 1, data: [{ id: fan.id, username: 'media_fan', full_name: expect.any(String), profile_picture: expect.any(String) }] });
    expect(m.comments.count).toBe(1);
    expect(m.comments.data[0]).toMatchObject({ text: 'wow', from: { id: fan.id } });
    const code = new URL(photo.link).pathname.split('/')[2]!;
    const byCode = await get(env.app, `/v1/media/shortcode/${code}`, other);
    expect((byCode.body.data as { id: string }).id).toBe(photo.id);
    expect((byCode.body.data as { user_has_liked: boolean }).user_has_liked).toBe(false);
  });

  it('answers 404 for unknown media and shortcodes, 400 for malformed ids', async () => {
    expect((await get(env.app, '/v1/media/12345', fan)).body.meta.error_type).toBe('APINotFoundError');
    expect((await get(env.app, '/v1/media/shortcode/AAAAB', fan)).body.meta.error_type).toBe('APINotFoundError');
    expect((await get(env.app, '/v1/media/shortcode/not!valid', fan)).body.meta.error_type).toBe('APIInvalidParametersError');
    for (const bad of ['abc', '-1', '99999999999999999999999']) {
      const res = await get(env.app, `/v1/media/${bad}`, fan);
      expect(res.status, bad).toBe(400);
      expect(res.body.meta.error_type).toBe('APIInvalidParametersError');
    }
  });

  it('only the owner may delete a media; then it is gone', async () => {
    const m = await upload(env.app, owner, { caption: 'to delete' });
    const byOther = await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}?access_token=${other.token}` });
    expect(byOther.statusCode).toBe(403);
    expect(errorType(byOther)).toBe('APINotAllowedError');
    const ok = await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}?access_token=${owner.token}` });
    expect(ok.json()).toEqual({ meta: { code: 200 }, data: null });
    expect((await get(env.app, `/v1/media/${m.id}`, owner)).status).toBe(404);
    const again = await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}?access_token=${owner.token}` });
    expect(errorType(again)).toBe('APINotFoundError');
    const blob = await env.app.inject(pathOf(m.images.thumbnail!.url));
    expect(blob.statusCode).toBe(404);
  });
});

describe('likes', () => {
  it('like, list likers, unlike; liking twice counts once', async () => {
    const m = await upload(env.app, owner, {});
    for (let i = 0; i < 2; i++) {
      const res = await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/likes?access_token=${other.token}` });
      expect(res.json()).toEqual({ meta: { code: 200 }, data: null });
    }
    const likers = await get(env.app, `/v1/media/${m.id}/likes`, fan);
    expect((likers.body.data as Array<{ id: string }>).map((u) => u.id)).toEqual([other.id]);
    expect(Object.keys((likers.body.data as object[])[0]!).sort()).toEqual(SHORT_USER_KEYS);
    expect(((await get(env.app, `/v1/media/${m.id}`, fan)).body.data as { likes: { count: number } }).likes.count).toBe(1);
    const del = await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}/likes?access_token=${other.token}` });
    expect(del.statusCode).toBe(200);
    expect((await get(env.app, `/v1/media/${m.id}/likes`, fan)).body.data).toEqual([]);
  });

  it('answers 404 when liking unknown media', async () => {
    const res = await env.app.inject({ method: 'POST', url: `/v1/media/98765/likes?access_token=${fan.token}` });
    expect(res.statusCode).toBe(404);
    expect(errorType(res)).toBe('APINotFoundError');
  });
});

describe('comments', () => {
  it('add (JSON, form or query), list oldest first; empty text is refused', async () => {
    const m = await upload(env.app, owner, {});
    const a = await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/comments?access_token=${fan.token}`, payload: { text: 'first!' } });
    expect(a.statusCode).toBe(200);
    expect(Object.keys(a.json().data).sort()).toEqual(['created_time', 'from', 'id', 'text']);
    await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/comments?access_token=${other.token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'text=second%20one' });
    await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/comments?access_token=${owner.token}&text=${encodeURIComponent("'; DROP TABLE comments; --")}` });
    const list = await get(env.app, `/v1/media/${m.id}/comments`, fan);
    expect((list.body.data as Array<{ text: string }>).map((c) => c.text)).toEqual(['first!', 'second one', "'; DROP TABLE comments; --"]);
    for (const payload of [{ text: '' }, { text: '   ' }, {}, { text: 'x'.repeat(2201) }]) {
      const res = await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/comments?access_token=${fan.token}`, payload });
      expect(res.statusCode, JSON.stringify(payload).slice(0, 30)).toBe(400);
      expect(errorType(res)).toBe('APIInvalidParametersError');
    }
  });

  it('a comment can be deleted by its author or the media owner, nobody else', async () => {
    const m = await upload(env.app, owner, {});
    const c1 = (await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/comments?access_token=${fan.token}`, payload: { text: 'by fan' } })).json().data.id;
    const c2 = (await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/comments?access_token=${fan.token}`, payload: { text: 'by fan again' } })).json().data.id;
    const byOther = await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}/comments/${c1}?access_token=${other.token}` });
    expect(byOther.statusCode).toBe(403);
    expect(errorType(byOther)).toBe('APINotAllowedError');
    expect((await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}/comments/${c1}?access_token=${fan.token}` })).statusCode).toBe(200);
    expect((await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}/comments/${c2}?access_token=${owner.token}` })).statusCode).toBe(200);
    expect((await get(env.app, `/v1/media/${m.id}/comments`, fan)).body.data).toEqual([]);
    const gone = await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}/comments/${c2}?access_token=${owner.token}` });
    expect(errorType(gone)).toBe('APINotFoundError');
    const bad = await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}/comments/abc?access_token=${owner.token}` });
    expect(errorType(bad)).toBe('APIInvalidParametersError');
  });
});

describe('tags', () => {
  it('a tag has a media count and recent media, paged by max_tag_id; search by prefix', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.unshift((await upload(env.app, owner, { caption: `day ${i} #Sunset` })).id);
    const tag = await get(env.app, '/v1/tags/sunset', fan);
    expect(tag.body.data).toEqual({ name: 'sunset', media_count: 5 });
    expect((await get(env.app, '/v1/tags/SUNSET', fan)).body.data).toEqual({ name: 'sunset', media_count: 5 });
    const seen: string[] = [];
    let url: string | undefined = `/v1/tags/sunset/media/recent?count=2&access_token=${fan.token}`;
    while (url) {
      const body: { data: Array<{ id: string }>; pagination: { next_url?: string; next_max_tag_id?: string } } = (await env.app.inject(url)).json();
      seen.push(...body.data.map((m) => m.id));
      if (body.pagination.next_url) expect(new URL(body.pagination.next_url).searchParams.get('max_tag_id')).toBe(body.pagination.next_max_tag_id);
      url = body.pagination.next_url ? pathOf(body.pagination.next_url) : undefined;
    }
    expect(seen).toEqual(ids);
    const newer = await get(env.app, `/v1/tags/sunset/media/recent?min_tag_id=${ids[2]}`, fan);
    expect((newer.body.data as Array<{ id: string }>).map((m) => m.id)).toEqual(ids.slice(0, 2));
    const search = await get(env.app, '/v1/tags/search?q=%23suns', fan);
    expect(search.body.data).toEqual([{ name: 'sunset', media_count: 5 }]);
    expect((await get(env.app, '/v1/tags/nosuchtag', fan)).body.meta.error_type).toBe('APINotFoundError');
    expect((await get(env.app, '/v1/tags/nosuchtag/media/recent', fan)).body.data).toEqual([]);
    expect((await get(env.app, '/v1/tags/bad%20tag', fan)).body.meta.error_type).toBe('APIInvalidParametersError');
  });
});

describe('locations and geo search', () => {
  it('a location by id, its recent media, and search near a point', async () => {
    const loc = photo.location!;
    const one = await get(env.app, `/v1/locations/${loc.id}`, fan);
    expect(one.body.data).toEqual({ id: loc.id, name: 'Golden Gate Bridge', latitude: 37.8199, longitude: -122.4783 });
    const recent = await get(env.app, `/v1/locations/${loc.id}/media/recent`, fan);
    expect((recent.body.data as Array<{ id: string }>).map((m) => m.id)).toEqual([photo.id]);
    const near = await get(env.app, '/v1/locations/search?lat=37.82&lng=-122.478&distance=500', fan);
    expect((near.body.data as Array<{ id: string }>).map((l) => l.id)).toEqual([loc.id]);
    const far = await get(env.app, '/v1/locations/search?lat=40.7&lng=-74', fan);
    expect(far.body.data).toEqual([]);
    expect((await get(env.app, '/v1/locations/555555', fan)).body.meta.error_type).toBe('APINotFoundError');
  });

  it('media/search finds media near a point; lat and lng are required and distance is capped at 5000 m', async () => {
    const near = await get(env.app, '/v1/media/search?lat=37.8199&lng=-122.4783', fan);
    expect(near.status).toBe(200);
    expect((near.body.data as Array<{ id: string }>).map((m) => m.id)).toEqual([photo.id]);
    expect((await get(env.app, '/v1/media/search?lat=0&lng=0', fan)).body.data).toEqual([]);
    for (const q of ['lat=37.8', 'lng=-122', 'lat=91&lng=0', 'lat=0&lng=181', 'lat=0&lng=0&distance=5001', 'lat=0&lng=0&distance=0', 'lat=abc&lng=0', 'lat=0&lng=0&max_timestamp=-4']) {
      const res = await get(env.app, `/v1/media/search?${q}`, fan);
      expect(res.status, q).toBe(400);
      expect(res.body.meta.error_type).toBe('APIInvalidParametersError');
    }
  });
});

describe('popular', () => {
  it('lists liked media first', async () => {
    const res = await get(env.app, '/v1/media/popular?count=3', fan);
    expect(res.status).toBe(200);
    const data = res.body.data as Array<{ id: string }>;
    expect(data.length).toBeGreaterThan(0);
    expect(data.length).toBeLessThanOrEqual(3);
    expect(data[0]!.id).toBe(photo.id);
  });
});

describe('CDN and media pages', () => {
  it('serves image bytes with ETag, immutable caching, and 304 on If-None-Match', async () => {
    const path = pathOf(photo.images.standard_resolution!.url);
    const res = await env.app.inject(path);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const etag = res.headers.etag as string;
    expect(etag).toMatch(/^(W\/)?".+"$/);
    expect((await sharp(res.rawPayload).metadata()).width).toBe(612);
    const again = await env.app.inject({ url: path, headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.rawPayload.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    const head = await env.app.inject({ method: 'HEAD', url: path });
    expect(head.statusCode).toBe(200);
  });

  it('answers the 404 envelope for missing and malformed keys', async () => {
    for (const key of ['media/1/150.jpg', '../../etc/passwd', 'media/%2e%2e/x', 'a//b']) {
      const res = await env.app.inject(`/cdn/${key}`);
      expect(res.statusCode, key).toBe(404);
      expect(errorType(res)).toBe('APINotFoundError');
    }
  });

  it('serves a default avatar for users without a picture', async () => {
    const me = (await get(env.app, '/v1/users/self', fan)).body.data as { profile_picture: string };
    const res = await env.app.inject(pathOf(me.profile_picture));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
    expect((await sharp(res.rawPayload).metadata()).format).toBe('jpeg');
  });

  it('the media link is a small HTML page; private owners show no photo', async () => {
    const res = await env.app.inject(pathOf(photo.link));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain(photo.images.standard_resolution!.url);
    const hacker = await signup(env.app, 'html_hacker');
    const xss = await upload(env.app, hacker, { caption: '<script>alert(1)</script>' });
    const page = await env.app.inject(pathOf(xss.link));
    expect(page.body).not.toContain('<script>alert(1)</script>');
    const priv = await signup(env.app, 'html_private', { isPrivate: true });
    const hidden = await upload(env.app, priv, { caption: 'secret' });
    const privPage = await env.app.inject(pathOf(hidden.link));
    expect(privPage.body).not.toContain('secret');
    expect(privPage.body).not.toContain('/cdn/media/');
    expect((await env.app.inject('/p/AAAAAB/')).statusCode).toBe(404);
  });
});
