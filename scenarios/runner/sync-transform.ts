// k6 scripts are synchronous: `const res = http.get(url)` blocks the VU until the response is in.
// On Node a request is asynchronous, so before a script runs, this transform turns the blocking calls
// of a plain k6 script into awaited ones, and the functions that make them into async functions.
//
// It works on one bundled script (script-loader.ts bundles the script and its imports with esbuild
// into one CommonJS function body, so every function of every file is in one scope), in four steps:
//   1. find the k6 modules' variables (`var import_http = __toESM(require("k6/http"))`);
//   2. call a call "blocking" when it is a k6 call that waits (k6/http's requests, k6's sleep and
//      group) or a call of a script function that will be made async;
//   3. make async, until nothing changes, every function that was written synchronous (not async,
//      not a generator, not a getter, setter or constructor) and makes a blocking call of its own;
//   4. wrap each blocking call in such a function in `(await …)`.
// Functions the author wrote `async` are left exactly as written (an awaited script keeps its own
// awaits, and an un-awaited call there stays a Promise, as the author meant). A synchronous callback
// given to forEach, map, filter, some, every, find, findIndex or flatMap that makes a blocking call
// becomes async, and the iteration is replaced by an awaited one that runs the callbacks in order,
// one after the other, as k6 would. Edits never add a line, so line numbers stay the bundle's.

import { parse } from 'acorn';
import MagicString from 'magic-string';

/** An ESTree node as acorn returns it (the fields this transform reads). */
interface Node {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

/** k6 calls that wait, per module: k6/http's requests, k6's sleep and group. */
const BLOCKING: Record<string, ReadonlySet<string>> = {
  'k6/http': new Set(['get', 'head', 'post', 'put', 'patch', 'del', 'options', 'request', 'batch']),
  k6: new Set(['sleep', 'group']),
};

/** Array methods whose callback may be made async: each has an awaited, in-order replacement. */
const ITERATORS: Record<string, string> = {
  forEach: '__sgForEach',
  map: '__sgMap',
  filter: '__sgFilter',
  some: '__sgSome',
  every: '__sgEvery',
  find: '__sgFind',
  findIndex: '__sgFindIndex',
  flatMap: '__sgFlatMap',
  reduce: '__sgReduce',
  reduceRight: '__sgReduceRight',
};

/** The awaited replacements, appended to the script (function declarations are hoisted). */
const ITERATOR_HELPERS = `
async function __sgItems(a) { if (Array.isArray(a) || typeof a === 'string') return Array.from(a, (v, i) => [v, i]); const out = []; a.forEach((v, k) => out.push([v, k])); return out; }
async function __sgForEach(a, f, t) { for (const [v, i] of await __sgItems(a)) await f.call(t, v, i, a); }
async function __sgMap(a, f, t) { const out = []; for (const [v, i] of await __sgItems(a)) out.push(await f.call(t, v, i, a)); return out; }
async function __sgFilter(a, f, t) { const out = []; for (const [v, i] of await __sgItems(a)) if (await f.call(t, v, i, a)) out.push(v); return out; }
async function __sgSome(a, f, t) { for (const [v, i] of await __sgItems(a)) if (await f.call(t, v, i, a)) return true; return false; }
async function __sgEvery(a, f, t) { for (const [v, i] of await __sgItems(a)) if (!(await f.call(t, v, i, a))) return false; return true; }
async function __sgFind(a, f, t) { for (const [v, i] of await __sgItems(a)) if (await f.call(t, v, i, a)) return v; return undefined; }
async function __sgFindIndex(a, f, t) { for (const [v, i] of await __sgItems(a)) if (await f.call(t, v, i, a)) return i; return -1; }
async function __sgFlatMap(a, f, t) { return (await __sgMap(a, f, t)).flat(); }
async function __sgReduce(a, f, ...init) { const items = await __sgItems(a); let k = 0; if (!init.length && !items.length) throw new TypeError('Reduce of empty array with no initial value'); let acc = init.length ? init[0] : items[k++][0]; for (; k < items.length; k++) acc = await f(acc, items[k][0], items[k][1], a); return acc; }
async function __sgReduceRight(a, f, ...init) { return __sgReduce(Array.from(a).reverse(), (acc, v, i, r) => f(acc, v, r.length - 1 - i, a), ...init); }
async function __sgFrom(x, f, t) { return __sgMap(Array.from(x), (v, i) => f.call(t, v, i)); }`.replace(/\n/g, ' ');

export interface SyncTransformResult {
  code: string;
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && typeof (v as Node).type === 'string' && typeof (v as Node).start === 'number';
}

const isFunction = (n: Node): boolean => n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression';

/** `require("k6/http")` or `__toESM(require("k6/http"))` → the module name, else null. */
function requiredK6(init: Node | null | undefined): string | null {
  let n = init;
  if (n?.type === 'CallExpression' && (n.callee as Node).type === 'Identifier' && ((n.callee as Node).name as string).startsWith('__toESM')) n = (n.arguments as Node[])[0];
  if (n?.type !== 'CallExpression' || (n.callee as Node).type !== 'Identifier' || (n.callee as Node).name !== 'require') return null;
  const arg = (n.arguments as Node[])[0];
  if (arg?.type !== 'Literal' || typeof arg.value !== 'string') return null;
  return arg.value in BLOCKING || arg.value.startsWith('k6') ? arg.value : null;
}

const propName = (m: Node): string | null => {
  const p = m.property as Node;
  if (!m.computed && p.type === 'Identifier') return p.name as string;
  if (p.type === 'Literal' && typeof p.value === 'string') return p.value;
  return null;
};

/**
 * Rewrites a bundled k6 script (CommonJS function body, as script-loader.ts makes it) so that its
 * synchronous k6 calls are awaited. Throws acorn's SyntaxError on code that does not parse.
 */
export function transformSyncScript(code: string): SyncTransformResult {
  const ast = parse(code, { ecmaVersion: 'latest', sourceType: 'script', allowReturnOutsideFunction: true, allowAwaitOutsideFunction: true }) as unknown as Node;

  const parent = new Map<Node, Node>();
  const functions: Node[] = [];
  const calls: Node[] = [];
  /** k6 module variables: name → module. */
  const k6Vars = new Map<string, string>();
  /** Script functions by the name they are called by: `f` or `obj.method`. */
  const byName = new Map<string, Node[]>();
  const bind = (name: string, fn: Node): void => {
    const list = byName.get(name) ?? byName.set(name, []).get(name)!;
    list.push(fn);
  };

  const walk = (n: Node, up: Node | null): void => {
    if (up) parent.set(n, up);
    if (isFunction(n)) functions.push(n);
    if (n.type === 'CallExpression') calls.push(n);
    if (n.type === 'VariableDeclarator' && (n.id as Node).type === 'Identifier') {
      const name = (n.id as Node).name as string;
      const init = n.init as Node | null;
      const mod = requiredK6(init);
      if (mod) k6Vars.set(name, mod);
      else if (init && isFunction(init)) bind(name, init);
      else if (init?.type === 'ObjectExpression') {
        for (const p of init.properties as Node[]) {
          if (p.type !== 'Property' || p.kind !== 'init' || p.computed) continue;
          const key = p.key as Node;
          const keyName = key.type === 'Identifier' ? (key.name as string) : typeof key.value === 'string' ? key.value : null;
          if (keyName && isFunction(p.value as Node)) bind(`${name}.${keyName}`, p.value as Node);
        }
      }
    }
    if (n.type === 'FunctionDeclaration' && n.id) bind((n.id as Node).name as string, n);
    // Any object literal's methods, by name alone too: `api.v1.feed()`, `this.feed()`.
    if (n.type === 'Property' && n.kind === 'init' && !n.computed && isFunction(n.value as Node)) {
      const key = n.key as Node;
      const keyName = key.type === 'Identifier' ? (key.name as string) : typeof key.value === 'string' ? key.value : null;
      if (keyName) bind(`.${keyName}`, n.value as Node);
    }
    // A class's methods, by name alone: `api.feed()` on an instance may call any class's `feed`.
    if (n.type === 'MethodDefinition' && n.kind === 'method' && !n.computed && (n.key as Node).type === 'Identifier') bind(`.${(n.key as Node).name as string}`, n.value as Node);
    if (n.type === 'AssignmentExpression' && (n.left as Node).type === 'Identifier' && isFunction(n.right as Node)) bind((n.left as Node).name as string, n.right as Node);
    for (const key of Object.keys(n)) {
      if (key === 'type' || key === 'start' || key === 'end') continue;
      const v = n[key];
      if (Array.isArray(v)) {
        for (const c of v) if (isNode(c)) walk(c, n);
      } else if (isNode(v)) walk(v, n);
    }
  };
  walk(ast, null);

  /** The function whose own body holds `n` (null at the top level). */
  const enclosing = new Map<Node, Node | null>();
  const ownerOf = (n: Node): Node | null => {
    let p = parent.get(n);
    while (p && !isFunction(p)) p = parent.get(p);
    return p ?? null;
  };
  for (const c of calls) enclosing.set(c, ownerOf(c));

  /** A function written synchronous that may be made async. */
  const convertible = (fn: Node): boolean => {
    if (fn.async || fn.generator) return false;
    const up = parent.get(fn);
    if (up?.type === 'MethodDefinition') return up.kind === 'method';
    if (up?.type === 'Property' && up.kind !== 'init') return false;
    return true;
  };

  const madeAsync = new Set<Node>();

  /** What a callee refers to: a blocking k6 call, a script function, or nothing known. */
  const k6Call = (callee: Node): boolean => {
    // (0, import_k6.sleep)(1): esbuild's form for a named import.
    if (callee.type === 'SequenceExpression') {
      const exprs = callee.expressions as Node[];
      return exprs.length === 2 && exprs[1]!.type === 'MemberExpression' && k6Call(exprs[1]!);
    }
    if (callee.type !== 'MemberExpression') return false;
    const name = propName(callee);
    if (!name) return false;
    let obj = callee.object as Node;
    // import_http.default.get(url): a default import.
    if (obj.type === 'MemberExpression' && propName(obj) === 'default') obj = obj.object as Node;
    if (obj.type !== 'Identifier') return false;
    const mod = k6Vars.get(obj.name as string);
    return mod !== undefined && (BLOCKING[mod]?.has(name) ?? false);
  };

  /**
   * Parameters that are called as functions and are given, at some call site, a function made
   * async (`retry(() => http.get(u))` makes `fn()` inside `retry` blocking): function → parameter names.
   */
  const asyncParams = new Map<Node, Set<string>>();

  const calleeFunctions = (callee: Node): Node[] => {
    // An IIFE: (function () { … })().
    if (isFunction(callee)) return [callee];
    if (callee.type === 'Identifier') return byName.get(callee.name as string) ?? [];
    if (callee.type === 'MemberExpression') {
      const name = propName(callee);
      if (!name) return [];
      // f.call(this, …) and f.apply(this, […]) call f.
      if ((name === 'call' || name === 'apply') && !(callee.object as Node).computed) {
        const target = calleeFunctions(callee.object as Node);
        if (target.length) return target;
      }
      const own = (callee.object as Node).type === 'Identifier' ? byName.get(`${(callee.object as Node).name as string}.${name}`) : undefined;
      return own ?? byName.get(`.${name}`) ?? [];
    }
    return [];
  };

  /** A call of a parameter of its own function that some caller fills with a function made async. */
  const asyncParamCall = (call: Node): boolean => {
    const callee = call.callee as Node;
    if (callee.type !== 'Identifier') return false;
    for (let fn = enclosing.get(call) ?? null; fn; fn = ownerOf(fn)) {
      const params = asyncParams.get(fn);
      if (params?.has(callee.name as string)) return true;
      if ((fn.params as Node[]).some((p) => p.type === 'Identifier' && p.name === callee.name)) return false;
    }
    return false;
  };

  /** A function argument that is (or names) a function made async. */
  const asyncCallback = (arg: Node | undefined): boolean => {
    if (!arg) return false;
    if (isFunction(arg)) return madeAsync.has(arg);
    if (arg.type === 'Identifier') return (byName.get(arg.name as string) ?? []).some((f) => madeAsync.has(f));
    return false;
  };

  const iteratorOf = (call: Node): string | null => {
    const callee = call.callee as Node;
    if (callee.type !== 'MemberExpression' || callee.optional) return null;
    const name = propName(callee);
    if (name === 'from' && (callee.object as Node).type === 'Identifier' && (callee.object as Node).name === 'Array') {
      return asyncCallback((call.arguments as Node[])[1]) ? 'Array.from' : null;
    }
    if (!name || !(name in ITERATORS)) return null;
    return asyncCallback((call.arguments as Node[])[0]) ? name : null;
  };

  /** Where a Promise is what the author wants: `.then(…)`, `Promise.all([…])`, an existing await. */
  const promiseWanted = (call: Node): boolean => {
    const up = parent.get(call);
    if (!up) return false;
    if (up.type === 'AwaitExpression') return true;
    if (up.type === 'MemberExpression' && up.object === call) {
      const p = propName(up);
      return p === 'then' || p === 'catch' || p === 'finally';
    }
    const promiseCombinator = (n: Node | undefined): boolean => {
      if (n?.type !== 'CallExpression') return false;
      const c = n.callee as Node;
      return c.type === 'MemberExpression' && (c.object as Node).type === 'Identifier' && (c.object as Node).name === 'Promise' && ['all', 'allSettled', 'race', 'any'].includes(propName(c) ?? '');
    };
    if (promiseCombinator(up)) return true;
    return up.type === 'ArrayExpression' && promiseCombinator(parent.get(up));
  };

  const blocking = (call: Node): boolean => {
    const callee = call.callee as Node;
    if (k6Call(callee)) return true;
    if (calleeFunctions(callee).some((f) => madeAsync.has(f))) return true;
    if (asyncParamCall(call)) return true;
    return iteratorOf(call) !== null;
  };

  // Step 3: to a fixed point (a function made async makes its callers blocking, and the parameters
  // it is passed in).
  for (let changed = true; changed; ) {
    changed = false;
    for (const c of calls) {
      const args = c.arguments as Node[];
      args.forEach((arg, i) => {
        if (!asyncCallback(arg)) return;
        for (const fn of calleeFunctions(c.callee as Node)) {
          const param = (fn.params as Node[])[i];
          if (param?.type !== 'Identifier') continue;
          const set = asyncParams.get(fn) ?? asyncParams.set(fn, new Set()).get(fn)!;
          if (!set.has(param.name as string)) {
            set.add(param.name as string);
            changed = true;
          }
        }
      });
    }
    for (const c of calls) {
      const owner = enclosing.get(c);
      if (!owner || madeAsync.has(owner) || !convertible(owner)) continue;
      if (promiseWanted(c) || !blocking(c)) continue;
      madeAsync.add(owner);
      changed = true;
    }
  }

  // Step 4: the edits.
  const s = new MagicString(code);
  for (const fn of madeAsync) {
    const up = parent.get(fn);
    if (up && (up.type === 'MethodDefinition' || (up.type === 'Property' && (up.method as boolean)))) {
      // `name() {…}` / `static name() {…}`: async goes before the key.
      const key = up.key as Node;
      s.prependRight(up.computed ? code.lastIndexOf('[', key.start) : key.start, 'async ');
    } else {
      // Right of the index: an iteration's rewrite overwrites what is left of its callback.
      s.prependRight(fn.start, 'async ');
    }
  }
  let helpers = false;
  for (const c of calls) {
    const owner = enclosing.get(c);
    if (!owner || !madeAsync.has(owner) || promiseWanted(c) || !blocking(c)) continue;
    const iterator = iteratorOf(c);
    if (iterator === 'Array.from') {
      // Array.from(x, f, t) → (await __sgFrom(x, f, t))
      s.overwrite(c.start, (c.arguments as Node[])[0]!.start, '(await __sgFrom(');
      s.appendRight(c.end, ')');
      helpers = true;
    } else if (iterator) {
      // a.map(f, t) → (await __sgMap(a, f, t))
      const callee = c.callee as Node;
      const args = c.arguments as Node[];
      s.prependLeft(c.start, `(await ${ITERATORS[iterator]!}(`);
      s.overwrite((callee.object as Node).end, args[0]!.start, ', ');
      s.appendRight(c.end, ')');
      helpers = true;
    } else {
      s.prependLeft(c.start, '(await ');
      s.appendRight(c.end, ')');
    }
  }
  if (helpers) s.append(ITERATOR_HELPERS);
  return { code: s.toString() };
}
