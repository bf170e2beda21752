// The `switchyard` command.
import { EnvError, loadEnv } from '../env.js';
import { createLogger } from '../logger.js';
import { UsageError } from './usage-error.js';

const help = `Switchyard: a control plane for Salesforce DevOps.

Usage:
  switchyard start [--queues critical,normal,batch] [--concurrency critical=2,normal=2,batch=1]
                                   apply migrations, then run the GraphQL API and workers
  switchyard serve                 apply migrations, then run the GraphQL API only
  switchyard worker [--queues …] [--concurrency …]
                                   apply migrations, then run workers only
  switchyard migrate               apply database migrations and exit
  switchyard token create --name NAME [--role OWNER|MEMBER|VIEWER|APPLICATION] [--user NAME] [--expires-in 90d]
                                   create an API token and print it (stdout: the token alone)
  switchyard token list            list tokens
  switchyard token revoke ID       revoke a token by id or prefix
  switchyard token revoke -        revoke the token read from stdin (never pass a token as an argument)

Configuration comes from environment variables; see the README.`;

function noArguments(command: string, rest: string[]): void {
  if (rest.length > 0) throw new UsageError(`"${command}" takes no arguments (got ${rest.join(' ')}).\n\n${help}`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  let env;
  try {
    env = loadEnv();
  } catch (error) {
    if (error instanceof EnvError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  // Commands other than `start` log to stderr so their stdout stays clean for scripts.
  const longRunning = command === 'start' || command === 'serve' || command === 'worker';
  const logger = createLogger(env.LOG_LEVEL, longRunning ? undefined : process.stderr);
  try {
    switch (command) {
      // Commands load only what they use, so `token` and `migrate` start quickly.
      case 'start': {
        const { serve } = await import('./server-command.js');
        await serve(env, logger, { api: true, workers: true, workerArgs: rest });
        return -1; // keeps running; the signal handlers exit
      }
      case 'serve': {
        noArguments(command, rest);
        const { serve } = await import('./server-command.js');
        await serve(env, logger, { api: true, workers: false, workerArgs: [] });
        return -1;
      }
      case 'worker': {
        const { serve } = await import('./server-command.js');
        await serve(env, logger, { api: false, workers: true, workerArgs: rest });
        return -1;
      }
      case 'migrate': {
        noArguments(command, rest);
        const { runMigrations } = await import('./migrate-command.js');
        await runMigrations(env, logger);
        return 0;
      }
      case 'token': {
        const { tokenCommand } = await import('./token-command.js');
        await tokenCommand(env, logger.child({}, { level: env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL }), rest);
        return 0;
      }
      default:
        throw new UsageError(`Unknown command "${command}".\n\n${help}`);
    }
  } catch (error) {
    // node:util parseArgs' refusals (an unknown or malformed option, e.g. `worker --queue critical`) are usage errors too.
    const usage = error instanceof UsageError || (error instanceof TypeError && String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS'));
    if (usage) {
      process.stderr.write(`${(error as Error).message}\n`);
      return 2;
    }
    logger.fatal({ err: error }, 'switchyard failed');
    return 1;
  }
}
