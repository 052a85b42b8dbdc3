// A Node module-resolution hook (loaded by module.register in the loader thread) that maps k6's
// module names to Scalegram's shims, and refuses the k6 modules the runner does not implement.

/** k6 module → shim file beside this hook. */
const SHIMS: Record<string, string> = {
  k6: './k6.ts',
  'k6/http': './http.ts',
  'k6/metrics': './metrics.ts',
  'k6/execution': './execution.ts',
  'k6/encoding': './encoding.ts',
  'k6/crypto': './crypto.ts',
  'k6/data': './data.ts',
  'k6/timers': './timers.ts',
};

interface ResolveResult {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}

type NextResolve = (specifier: string, context?: unknown) => ResolveResult | Promise<ResolveResult>;

export async function resolve(specifier: string, context: unknown, nextResolve: NextResolve): Promise<ResolveResult> {
  const shim = SHIMS[specifier];
  // Resolved through the next hook (tsx's) so the .ts shim is loaded by it like any other file, and
  // is the same module instance the runner imports.
  if (shim) return nextResolve(new URL(shim, import.meta.url).href, context);
  if (specifier.startsWith('k6/')) {
    // Thrown here, at resolution, because a module that threw at evaluation would first fail
    // linking on the script's named imports, with Node's message instead of this one. (The error
    // crosses from the loader thread as a plain Error: a code property survives, a class does not.)
    const err = new Error(
      `${specifier} is not supported by Scalegram's runner (it implements k6, k6/http, k6/metrics, k6/execution, ` +
        'k6/encoding, k6/crypto, k6/data and k6/timers); run this script with real k6 instead',
    ) as Error & { code: string };
    err.code = 'SG_K6_UNSUPPORTED_MODULE';
    throw err;
  }
  const resolved = await nextResolve(specifier, context);
  // Scenario scripts are ES modules wherever they live: outside a `"type": "module"` package Node
  // would take a .ts or .js file for CommonJS (and fail on its imports). Dependencies keep theirs.
  if (resolved.url.startsWith('file:') && !resolved.url.includes('/node_modules/') && /\.(ts|js)$/.test(resolved.url) && resolved.format !== 'module') {
    return { ...resolved, format: 'module' };
  }
  return resolved;
}
