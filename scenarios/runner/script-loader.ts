// How the runner loads a k6 script: as k6 does, each VU gets its own copy of the script's module
// state (a top-level `let` is per VU), and the script may be written synchronously as k6's
// documentation writes it.
//
// The script and the files it imports are bundled once with esbuild into one CommonJS function body
// (k6's own modules stay `require("k6/http")`, answered with Scalegram's shims), the body is made
// awaitable by sync-transform.ts, and compiled once. Each VU then evaluates the compiled function:
// the init code runs again per VU, which is k6's init stage, at the cost of the script's own
// top-level objects per VU, not of another compile. VU 0 is the init context: options, setup,
// teardown and handleSummary come from it, as in k6.

import { buildSync, type Message } from 'esbuild';
import { createRequire, SourceMap } from 'node:module';
import { dirname, resolve } from 'node:path';
import { compileFunction } from 'node:vm';
import * as k6 from './k6/k6.ts';
import * as k6Crypto from './k6/crypto.ts';
import * as k6Data from './k6/data.ts';
import * as k6Encoding from './k6/encoding.ts';
import * as k6Execution from './k6/execution.ts';
import * as k6Http from './k6/http.ts';
import * as k6Metrics from './k6/metrics.ts';
import * as k6Timers from './k6/timers.ts';
import { vuStorage } from './runtime.ts';
import { transformSyncScript } from './sync-transform.ts';

export type ScriptModule = Record<string, unknown> & {
  options?: unknown;
  topology?: unknown;
  work?: unknown;
  population?: unknown;
  setup?: () => unknown;
  teardown?: (data: unknown) => unknown;
  handleSummary?: (data: unknown) => unknown;
};

/** The k6 modules scripts may import, as CommonJS exports of the shims. */
const SHIMS: Record<string, object> = {
  k6,
  'k6/http': k6Http,
  'k6/metrics': k6Metrics,
  'k6/execution': k6Execution,
  'k6/encoding': k6Encoding,
  'k6/crypto': k6Crypto,
  'k6/data': k6Data,
  'k6/timers': k6Timers,
};

/** A shim namespace as esbuild's CommonJS interop reads an ES module: named exports plus `default`. */
const asCommonJs = (ns: object): object => Object.defineProperty({ ...ns }, '__esModule', { value: true });
const SHIM_EXPORTS: Record<string, object> = Object.fromEntries(Object.entries(SHIMS).map(([k, v]) => [k, asCommonJs(v)]));

/** A script that could not be bundled or transformed: its problems, each with file and line. */
export class ScriptLoadError extends Error {
  override name = 'ScriptLoadError';
  code = 'SG_ERR_SCRIPT_LOAD';
}

export interface LoadedScript {
  /** The script's module as VU `vu` sees it (evaluated on first use; 0 is the init context). */
  module(vu: number): ScriptModule;
  /** A stack trace with the bundle's positions replaced by the script files' own (file:line:column). */
  mapStack(stack: string): string;
}

const messageText = (m: Message): string => `${m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ` : ''}${m.text}`;

/** Bundles, transforms and compiles the script at `scriptPath`. Throws ScriptLoadError on a bad script. */
export function loadScript(scriptPath: string): LoadedScript {
  const file = resolve(scriptPath);
  let bundled: string;
  let sourceMap: SourceMap | null = null;
  try {
    const out = buildSync({
      entryPoints: [file],
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      external: ['k6', 'k6/*'],
      write: false,
      // The map lets a stack trace name the script's own files and lines (mapStack), not the bundle's.
      sourcemap: 'external',
      outfile: `${file}.bundle.js`,
      logLevel: 'silent',
    });
    bundled = out.outputFiles.find((f) => f.path.endsWith('.js'))!.text;
    const map = out.outputFiles.find((f) => f.path.endsWith('.map'));
    if (map) sourceMap = new SourceMap(JSON.parse(map.text) as ConstructorParameters<typeof SourceMap>[0]);
    bundled = bundled.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
  } catch (e) {
    const errors = (e as { errors?: Message[] }).errors ?? [];
    throw new ScriptLoadError(errors.length ? errors.map(messageText).join('\n') : (e as Error).message);
  }
  let code: string;
  try {
    ({ code } = transformSyncScript(bundled));
  } catch (e) {
    throw new ScriptLoadError(`the script could not be made awaitable (${(e as Error).message}); write it with await, or report this script`);
  }
  const body = compileFunction(`'use strict';${code}`, ['exports', 'require', 'module', '__filename', '__dirname', '__VU'], { filename: file });
  const nodeRequire = createRequire(file);
  const require = (id: string): unknown => {
    const shim = SHIM_EXPORTS[id];
    if (shim) return shim;
    if (id === 'k6' || id.startsWith('k6/')) {
      const err = new Error(
        `${id} is not supported by Scalegram's runner (it implements ${Object.keys(SHIMS).join(', ')}); run this script with real k6 instead`,
      ) as Error & { code: string };
      err.code = 'SG_K6_UNSUPPORTED_MODULE';
      throw err;
    }
    if (/^https?:\/\//.test(id)) {
      const err = new Error(`${id}: remote modules are not fetched by Scalegram's runner (it runs offline); download the file beside the script and import it by its path`) as Error & { code: string };
      err.code = 'SG_K6_REMOTE_MODULE';
      throw err;
    }
    return nodeRequire(id);
  };
  const modules = new Map<number, ScriptModule>();
  const outDir = dirname(file);
  const bundleFrame = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):(\\d+)`, 'g');
  return {
    mapStack(stack: string): string {
      if (!sourceMap) return stack;
      const map = sourceMap;
      return stack.replace(bundleFrame, (whole, line: string, column: string) => {
        // The transform adds no line, so a bundle line is the map's; columns may be a few off.
        const entry = map.findEntry(Number(line) - 1, Math.max(0, Number(column) - 1)) as { originalSource?: string; originalLine?: number; originalColumn?: number };
        if (!entry.originalSource || entry.originalLine === undefined) return whole;
        const source = entry.originalSource.startsWith('file:') ? new URL(entry.originalSource).pathname : resolve(outDir, entry.originalSource);
        return `${source}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`;
      });
    },
    module(vu: number): ScriptModule {
      const known = modules.get(vu);
      if (known) return known;
      const mod = { exports: {} as ScriptModule };
      // Init code runs outside any iteration (open() is allowed, __ITER is 0), with this VU's __VU.
      vuStorage.exit(() => body.call(mod.exports, mod.exports, require, mod, file, dirname(file), vu));
      modules.set(vu, mod.exports);
      return mod.exports;
    },
  };
}
