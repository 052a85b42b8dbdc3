// A worker thread's entry: threads do not inherit the main thread's TypeScript loader, so this
// registers tsx's (as bin/scalegram.mjs does) before loading the server thread's module.
import { register } from 'tsx/esm/api';

register();
await import('./thread.ts');
