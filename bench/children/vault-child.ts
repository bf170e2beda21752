// An empty child that first loads node-vault, as a task child does before it redeems a Vault grant: the
// difference between its start-up and empty-child.ts's is what Vault as the secret store adds to each task
// child. bench/dispatch.ts runs it two ways:
//   --switchyard      as src/secrets/vault-unwrap.ts loads it (require(), axios's unused dependencies deferred);
//   (nothing)         require('node-vault') plainly.
import { createRequire } from 'node:module';

if (process.argv[2] === '--switchyard') {
  (await import('../../src/secrets/vault-unwrap.js')).createVaultClient({ address: 'http://127.0.0.1:8200', token: 'bench' });
} else {
  createRequire(import.meta.url)('node-vault');
}
if (process.send) process.send({ t: 'ready', cpu: process.cpuUsage() }, undefined, {}, () => process.exit(0));
else process.exit(0);
