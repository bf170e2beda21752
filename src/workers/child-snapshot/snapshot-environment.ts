// The environment a child snapshot was made in, as one comparable string. Both the snapshot's script and the
// launcher compare it (snapshot-main.ts, child-snapshot.ts), so this module imports nothing.

/** Variables Node sets up for the child's IPC channel: they differ for every child and say nothing else. */
const perChild = /^NODE_CHANNEL_/;

export function environmentKey(env: NodeJS.ProcessEnv): string {
  return JSON.stringify(
    Object.keys(env)
      .filter((name) => !perChild.test(name) && env[name] !== undefined)
      .sort()
      .map((name) => [name, env[name]]),
  );
}
