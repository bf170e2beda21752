// Runs the modules of a module bundle (module-bundle.ts) as Node's CommonJS loader runs files: Module._load and
// Module.prototype._compile, for a module whose source is already compiled (the bundle's wrapper function of
// it) and whose requests were resolved at build time. What Node does, this does:
//   - a real Module, in the module cache under the module's real file, before its code runs: a cycle gets the
//     exports as they are so far, and a later plain require() of that file, from anywhere, gets this module;
//   - the module joins its parent's `children` (also when it was loaded already), and a module that throws
//     while loading leaves the cache and its parent's `children`;
//   - `require` answers a request the build resolved from the bundle; any other request (built-ins, stand-ins,
//     JSON, ES modules, what the build could not resolve) goes to the module's own `module.require`, so Node
//     resolves and loads it from the module's real file, hooks on Module._load included;
//   - `require.resolve` (with `paths`), `require.cache`, `require.main` and `require.extensions` are Node's.
// What it does not do: call hooks on Module._load or Module.prototype.require for the bundled modules
// themselves, warn about reading a missing export of a module in a cycle, or map stack traces back to the
// original files (they point into the bundle).
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const nodeRequire = createRequire(import.meta.url);
const cache = nodeRequire.cache;

/** Each module (path relative to the bundle) as Node's wrapper function of its source, with its resolved requests. */
type Factory = (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
export type BundledModules = Record<string, [Factory, Record<string, string>]>;

/** A function that runs a bundled module (by its relative path) for `parent` and returns its exports. */
export type ModuleRunner = (relative: string, parent: Module) => unknown;

export function moduleRunner(dir: string, modules: BundledModules): ModuleRunner {
  const files = new Map<string, string>();
  const inBundle = bundlePaths(dir);
  const fileOf = (relative: string) => {
    let file = files.get(relative);
    if (!file) files.set(relative, (file = inBundle(relative)));
    return file;
  };
  const run: ModuleRunner = (relative, parent) => {
    const file = fileOf(relative);
    const cached = cache[file];
    if (cached) {
      if (!parent.children.includes(cached)) parent.children.push(cached);
      return cached.exports; // loaded already, loading (a cycle), or a stand-in
    }
    if (!Object.hasOwn(modules, relative)) return parent.require(file); // left out of the bundle: Node loads the file
    const [factory, requests] = modules[relative]!;
    const module = new Module(file, parent); // joins parent.children
    module.filename = file;
    lazyPaths(module);
    cache[file] = module;
    let threw = true;
    try {
      factory.call(module.exports, module.exports, requireFor(module, requests), module, file, dirname(file));
      threw = false;
    } finally {
      if (threw) {
        // As Node does: a module that threw while loading is forgotten.
        delete cache[file];
        const index = parent.children.indexOf(module);
        if (index !== -1) parent.children.splice(index, 1);
      }
    }
    module.loaded = true;
    return module.exports;
  };
  const requireFor = (module: Module, requests: Record<string, string>): NodeJS.Require => {
    let resolver: NodeJS.Require | undefined;
    const resolving = () => (resolver ??= createRequire(module.filename));
    const require = ((request: string) => (Object.hasOwn(requests, request) ? run(requests[request]!, module) : module.require(request))) as NodeJS.Require;
    require.resolve = Object.assign((request: string, options?: { paths?: string[] }) => resolving().resolve(request, options), {
      paths: (request: string) => resolving().resolve.paths(request),
    });
    require.cache = cache;
    require.main = nodeRequire.main;
    require.extensions = nodeRequire.extensions;
    return require;
  };
  return run;
}

/**
 * Turns paths relative to a bundle's directory (as the build writes them: `path.relative`'s output, so some
 * leading `..` segments and then a normalised rest) into the absolute paths `path.join(dir, relative)` gives,
 * with one `join` per distinct number of leading `..`s instead of one per path. A child opening a bundle works
 * out some 120 of them (the freshness check, the stand-ins, each module it runs), while `path.join` is still
 * interpreted code: its normalising loop made up about 3 ms of a Salesforce child's start-up. One per directory
 * in a process: opening a bundle checks, defers and runs paths of the same directory.
 */
export function bundlePaths(dir: string): (relative: string) => string {
  let inBundle = joiners.get(dir);
  if (inBundle) return inBundle;
  const bases = new Map<number, string>();
  inBundle = (relative) => {
    let ups = 0;
    while (relative.startsWith('../', ups * 3)) ups += 1;
    const rest = relative.slice(ups * 3);
    // Anything else (`.` or `..` further in, empty segments, an absolute path) is left to path.join.
    if (rest.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) return join(dir, relative);
    let base = bases.get(ups);
    if (base === undefined) bases.set(ups, (base = join(dir, '../'.repeat(ups), '/')));
    return base + rest;
  };
  joiners.set(dir, inBundle);
  return inBundle;
}

const joiners = new Map<string, (relative: string) => string>();

/**
 * Node sets `paths` (where `module.require` looks for packages) as it loads a file. Working it out costs more
 * than the rest of running a small module and bundled modules' own requests do not need it, so it is worked
 * out when first read (by `module.require`, for a request the build left to Node, or by the module itself).
 */
function lazyPaths(module: Module): void {
  const settle = (paths: string[]) => Object.defineProperty(module, 'paths', { value: paths, writable: true, configurable: true, enumerable: true });
  Object.defineProperty(module, 'paths', {
    configurable: true,
    enumerable: true,
    get: () => {
      const paths = (Module as unknown as { _nodeModulePaths(from: string): string[] })._nodeModulePaths(dirname(module.filename));
      settle(paths);
      return paths;
    },
    set: settle,
  });
}

/** The module the entries of a bundle are loaded for: the library's loader, as when it requires them itself. */
export function loaderModule(file: string): Module {
  const module = new Module(file);
  module.filename = file;
  module.loaded = true;
  lazyPaths(module);
  return module;
}
