// SWITCHYARD_RUN_AS: a process started as root switches to an unprivileged user once it has read what only root
// may read, before it forks a single task child.
//
// A task child runs as the worker's user, and Linux lets a process read /proc/<pid>/environ (and more) of any
// process of its own user that is "dumpable". The worker's environment holds DATABASE_URL, the built-in store's
// SWITCHYARD_SECRET_KEY and Vault's AppRole secret id: a compromised child could read them from its parent and,
// with them, every org's credentials. A process that changes its user ids is no longer dumpable (its /proc files
// belong to root), so a worker that starts as root and switches keeps its environment and memory from its
// children, which run as the same unprivileged user.
import { readFileSync } from 'node:fs';

/** The uid and gid of `user` in /etc/passwd (a name or a number), and the group's id (a name in /etc/group, or a number). */
function lookUp(user: string, group: string | undefined): { uid: number; gid: number } {
  const entry = (file: string, key: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.split(':'))
      .find((fields) => fields[0] === key || (/^\d+$/.test(key) && fields[2] === key));
  const passwd = entry('/etc/passwd', user);
  if (!passwd) throw new Error(`SWITCHYARD_RUN_AS: there is no user "${user}" in /etc/passwd`);
  let gid = Number(passwd[3]);
  if (group !== undefined) {
    const found = /^\d+$/.test(group) ? [group, '', group] : entry('/etc/group', group);
    if (!found) throw new Error(`SWITCHYARD_RUN_AS: there is no group "${group}" in /etc/group`);
    gid = Number(found[2]);
  }
  return { uid: Number(passwd[2]), gid };
}

/**
 * Switches this process to `spec` ("user" or "user:group", names or ids): its groups, then its group, then its
 * user. Running as that user already, it does nothing; running as anyone else but root, it cannot, and throws.
 * Returns the ids it runs as.
 */
export function runAs(spec: string): { uid: number; gid: number } {
  const target = runAsIds(spec);
  const uid = process.getuid!();
  if (uid === target.uid && process.getgid!() === target.gid) return target;
  if (uid !== 0) throw new Error(`SWITCHYARD_RUN_AS=${spec}: switching users needs the process to start as root (it runs as uid ${uid})`);
  // The user's own supplementary groups, not root's. (Node has it on POSIX; @types/node does not declare it.)
  (process as unknown as { initgroups(user: number, extraGroup: number): void }).initgroups(target.uid, target.gid);
  process.setgid!(target.gid);
  process.setuid!(target.uid);
  if (process.getuid!() !== target.uid || process.geteuid!() !== target.uid || process.getgid!() !== target.gid) {
    throw new Error(`SWITCHYARD_RUN_AS=${spec}: the switch did not take`);
  }
  return target;
}

/** The ids `spec` ("user" or "user:group") names, without switching to them. */
export function runAsIds(spec: string): { uid: number; gid: number } {
  const [user, group] = spec.split(':') as [string, string | undefined];
  return lookUp(user, group);
}
