// Whether a script module is the one node was asked to run (`node dist/scripts/x.js`), not one imported by
// another module (tests and benchmarks import the scripts' functions).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The script node was asked to run (argv[1] as given may be a symlink, or lack the .js node adds). */
const invokedAs = (() => {
  for (const candidate of process.argv[1] ? [process.argv[1], `${process.argv[1]}.js`] : []) {
    try {
      return realpathSync(candidate);
    } catch {
      // try the next spelling
    }
  }
  return undefined;
})();

export function invokedDirectly(moduleUrl: string): boolean {
  return invokedAs !== undefined && invokedAs === fileURLToPath(moduleUrl);
}
