// A benchmark target in its own process, so the load generator does not share an event loop
// with the server it measures. `bare` is a bare Fastify route (the ceiling); `scalegram` is the
// photo service on the default topology, seeded and warmed, in memory or (`scalegram DIR`) with
// DIR as its --data-dir. Prints one JSON line when ready. `sharp FILE SECONDS N` is the image
// library alone: the three sizes the upload route makes (renderVariants) of the JPEG in FILE, N at
// once for SECONDS, in a process started like the service's; it prints its rate as one JSON line.

import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { buildApp } from '../server/app.ts';
import { benchPhoto } from './http.ts';
import { renderVariants } from '../sim/parts/image-resizer.ts';
import { randomSecret } from '../sim/domain/credentials.ts';
import { seedFollows, seedUsers } from '../sim/workload/bulk-loader.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology } from '../sim/topology.ts';

const kind = process.argv[2];
// An orderly exit on SIGTERM (the bench's stop), so a target run with --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));

if (kind === 'bare') {
  const app = Fastify();
  app.get('/', async () => ({ hello: 'world' }));
  // The same bytes a warm feed page answers, as a precomputed buffer: what the size of the answer
  // alone costs.
  const payloadFile = process.argv[3];
  if (payloadFile) {
    const payload = readFileSync(payloadFile);
    app.get('/payload', async (_request, reply) => reply.type('application/json; charset=utf-8').send(payload));
  }
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(JSON.stringify({ address }) + '\n');
} else if (kind === 'scalegram') {
  const dataDir = process.argv[3];
  const topology = await buildTopology({ config: loadTopology('2012-sharded'), seed: 42, ...(dataDir ? { dataDir } : {}) });
  // The load generator opens --connections (up to 10,000) from 127.0.0.1: no per-address cap.
  const app = await buildApp({ topology, rateLimitPerHour: 0, adminToken: randomSecret(), connections: { maxConnectionsPerAddress: 0 } });
  const store = topology.store;
  // A reader following 50 posters with 4 photos each: a full first feed page of 20.
  const posters = await seedUsers(topology, Array.from({ length: 50 }, (_, i) => ({ username: `poster${i}`, fullName: `Poster ${i}` })));
  const likers = await seedUsers(topology, Array.from({ length: 2000 }, (_, i) => ({ username: `liker${i}`, fullName: `Liker ${i}` })));
  const reader = likers[0]!;
  await seedFollows(topology, posters.map((p) => [reader.id, p.id] as const));
  // The first poster has 200 more followers, so each of its posts costs a fan-out of 201 deliveries.
  const poster = posters[0]!;
  await seedFollows(topology, likers.slice(1, 201).map((l) => [l.id, poster.id] as const));
  const photo = await benchPhoto();
  const mediaIds: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (const p of posters) {
      const m = await store.createMedia({ userId: p.id, caption: `photo ${round} #bench`, filter: 'Normal', lat: null, lng: null, locationName: null, image: photo });
      mediaIds.push(m.id);
    }
  }
  await topology.idle();
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  // Warm the feed path (caches, statements) before anything is measured.
  for (let i = 0; i < 200; i++) await app.inject({ url: `/v1/users/self/feed?access_token=${reader.accessToken}` });
  process.stdout.write(JSON.stringify({ address, reader: reader.accessToken, poster: poster.accessToken, likers: likers.map((l) => l.accessToken), likerIds: likers.map((l) => l.id), mediaIds, photo: photo.toString('base64') }) + '\n');
} else if (kind === 'sharp') {
  const photo = readFileSync(process.argv[3]!);
  const seconds = Number(process.argv[4]);
  const concurrency = Number(process.argv[5]);
  await renderVariants(photo); // warm-up: libvips loads its codecs
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await renderVariants(photo);
        done++;
      }
    }),
  );
  const elapsedS = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ perS: done / elapsedS, done, concurrency, libvipsThreads: sharp.concurrency() }) + '\n');
} else {
  process.stderr.write(`unknown target ${kind}\n`);
  process.exit(2);
}
