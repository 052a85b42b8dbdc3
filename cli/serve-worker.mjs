// A server process of `scalegram serve --workers N` (node:cluster worker): cluster workers start
// without the primary's TypeScript loader, so this registers tsx's (as bin/scalegram.mjs does).
import { register } from 'tsx/esm/api';

register();
const { runServeWorker } = await import('./serve-worker.ts');
await runServeWorker();
