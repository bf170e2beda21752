// A fresh Node process that redeems a Vault grant the way a task child does (src/secrets/vault-unwrap.ts,
// from the compiled dist/) and reports which of node-vault's deferred dependencies were loaded. A separate
// process, because the module cache is per process. Driven over IPC by test/vault-store.test.ts:
//   { job: 'unwrap', grant }  unwraps the grant, as child-main.ts does for a Vault grant;
//   { job: 'use-each' }        has node-vault's axios use each deferred dependency after loading node-vault.
import { createRequire } from 'node:module';
import { deferredDependencyStates, unwrapVaultGrant, createVaultClient } from '../../dist/secrets/vault-unwrap.js';

async function unwrap({ grant }) {
  const value = await unwrapVaultGrant(grant);
  return { value, states: deferredDependencyStates() };
}

function useEach() {
  createVaultClient({ address: 'http://127.0.0.1:8200', token: 'probe' }); // loads node-vault, defers the rest
  const before = deferredDependencyStates();
  const requireFromVault = createRequire(createRequire(import.meta.url).resolve('node-vault'));
  const axios = requireFromVault('axios');
  // axios builds multipart bodies with form-data (platform.classes.FormData), through the stand-in.
  const form = axios.toFormData({ entity: 'x' });
  const HttpsProxyAgent = createRequire(requireFromVault.resolve('axios'))('https-proxy-agent');
  const agent = new HttpsProxyAgent('http://127.0.0.1:3128');
  const uses = {
    formBody: form.getBuffer().toString(),
    formIsFormData: axios.isAxiosError !== undefined && form instanceof axios.defaults.env.FormData,
    agentIsAgent: agent instanceof HttpsProxyAgent,
    agentProxyHost: agent.proxy.host,
  };
  return { uses, before, after: deferredDependencyStates() };
}

process.once('message', async (message) => {
  let reply;
  try {
    reply = message.job === 'unwrap' ? await unwrap(message) : useEach();
  } catch (error) {
    reply = { error: String(error?.stack ?? error) };
  }
  process.send(reply, () => process.exit(0));
});
