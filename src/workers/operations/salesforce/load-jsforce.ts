// Loads jsforce inside the per-task child: its core, plus the API modules an operation asks for (each
// registers itself on Connection when loaded). A child started from the child snapshot (workers/child-snapshot/)
// has them loaded already; any other loads them from the prebuilt bundle `npm run build` makes
// (module-bundles/module-bundle.ts) or, without one, from node_modules. The package's index is never loaded:
// it also loads Bulk, Bulk 2.0, Chatter, Analytics, Apex, Tooling, SOAP and the Streaming API (with Faye).
import { preloadedJsforce } from '../../child-snapshot/preloaded.js';
import { jsforceBundle, type JsforceApi, type JsforceCore } from './jsforce-bundle.js';

/**
 * jsforce's core with the given APIs registered on Connection: the snapshot's, when this child was started from
 * one that has them; else from its prebuilt bundle in `bundleDir` or, when there is no current bundle there,
 * module by module from node_modules (what the bundle is built from and checked against). Either way the
 * deferred dependencies are stand-ins.
 *
 * The bundle's loader is imported only then: a child from the snapshot does not pay for compiling its modules.
 * From node_modules with require(), not import(): importing CommonJS from an ES module makes Node scan each
 * module's source for its named exports, following every re-export (jsforce's core re-exports six modules, the
 * Metadata API its 280 KB schema), which about doubles the CPU the load takes.
 */
export async function loadJsforce(apis: JsforceApi[] = [], bundleDir?: string): Promise<JsforceCore> {
  const preloaded = bundleDir === undefined ? preloadedJsforce(apis) : undefined;
  if (preloaded) return preloaded;
  const { bundleDirectory, loadEntries } = await import('../../../module-bundles/module-bundle.js');
  return loadEntries(jsforceBundle, ['core', ...apis], bundleDir ?? bundleDirectory(jsforceBundle)).core as JsforceCore;
}
