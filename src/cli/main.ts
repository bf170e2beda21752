// The `switchyard` command.
import { EnvError, loadEnv } from '../env.js';
import { createLogger } from '../logger.js';
import { runMigrations, startServer } from './server-command.js';
import { tokenCommand } from './token-command.js';
import { UsageError } from './usage-error.js';

const help = `Switchyard: a control plane for Salesforce DevOps.

Usage:
  switchyard start                 apply migrations, then serve the GraphQL API
  switchyard migrate               apply database migrations and exit
  switchyard token create --name NAME [--role OWNER|MEMBER|VIEWER|APPLICATION] [--user NAME] [--expires-in 90d]
                                   create an API token and print it (stdout: the token alone)
  switchyard token list            list tokens
  switchyard token revoke ID       revoke a token by id or prefix

Configuration comes from environment variables; see the README.`;

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
  const logger = createLogger(env.LOG_LEVEL, command === 'start' ? undefined : process.stderr);
  try {
    switch (command) {
      case 'start':
        await startServer(env, logger);
        return -1; // keeps running; the signal handlers exit
      case 'migrate':
        await runMigrations(env, logger);
        return 0;
      case 'token':
        await tokenCommand(env, logger.child({}, { level: env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL }), rest);
        return 0;
      default:
        throw new UsageError(`Unknown command "${command}".\n\n${help}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    logger.fatal({ err: error }, 'switchyard failed');
    return 1;
  }
}
