// An empty child that first loads node-vault, as a task child does before it redeems a Vault grant: the
// difference between its start-up and empty-child.ts's is what Vault as the secret store adds to each task
// child. bench/dispatch.ts runs it two ways:
//   --switchyard      as src/secrets/vault-unwrap.ts loads it: from its prebuilt bundle with its code cache
//                     (src/module-bundles/, which the benchmark builds first; axios's unused dependencies deferred);
//   (nothing)         require('node-vault') plainly.
import { createRequire } from 'node:module';

let from: unknown;
if (process.argv[2] === '--switchyard') {
  const { createVaultClient, nodeVaultBundle } = await import('../../src/secrets/vault-unwrap.js');
  createVaultClient({ address: 'http://127.0.0.1:8200', token: 'bench' });
  from = (await import('../../src/module-bundles/module-bundle.js')).bundleState(nodeVaultBundle);
} else {
  createRequire(import.meta.url)('node-vault');
}
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage(), from }, undefined, {}, () => process.exit(0));
else process.exit(0);
