#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerBackfillCommand } from './commands/backfill.js';
import { registerDagCommands } from './commands/dags.js';
import { registerDagOpsCommands } from './commands/dags-ops.js';
import { registerDbCommands } from './commands/db.js';
import { registerPoolCommands } from './commands/pools.js';
import { registerRunCommands } from './commands/runs.js';
import { registerSchedulerCommand } from './commands/scheduler.js';
import { registerTaskCommands } from './commands/tasks.js';
import { registerWebserverCommand } from './commands/webserver.js';
import { registerWorkerCommands } from './commands/worker.js';
import { EXIT, reportError } from './output.js';

const program = new Command('kiln')
  .description('kiln: a fast, supervised DAG scheduler and task executor for Node.js')
  .option('--config <file>', 'config file (default: kiln.config.{ts,js,json} in the current folder)')
  .option('--dags-folder <dir>', 'DAG folder (env KILN_DAGS_FOLDER, default ./dags)')
  .option('--database <url>', 'database URL (env KILN_DATABASE_URL, default sqlite .kiln/kiln.db)')
  .option('--parallelism <n>', 'tasks running at once (env KILN_PARALLELISM)')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(`kiln: ${str.replace(/^error: /, '')}`) });

/** Runs a command's action and turns its outcome into the process exit code. */
async function run(action: () => Promise<number>): Promise<void> {
  let code: number;
  try {
    code = await action();
  } catch (err) {
    code = reportError(err);
  }
  process.exitCode = code;
}

// `kiln dags list --json | head` closes our stdout early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

registerDagCommands(program, run);
registerDagOpsCommands(program, run);
registerDbCommands(program, run);
registerSchedulerCommand(program, run);
registerBackfillCommand(program, run);
registerRunCommands(program, run);
registerTaskCommands(program, run);
registerPoolCommands(program, run);
registerWebserverCommand(program, run);
registerWorkerCommands(program, run);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  else process.exitCode = reportError(err);
}
