import type { Command } from 'commander';
import { withStore } from '../../app/scheduler-ops.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT } from '../output.js';

export function registerDbCommands(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  const db = program.command('db').description('the metadata database');
  db.command('migrate')
    .description('create or upgrade the schema of the configured database')
    .action((_opts: unknown, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        // withStore migrates the database before it hands the store over.
        const dialect = await withStore(config, async (store) => store.dialect);
        process.stdout.write(`migrated ${dialect} database\n`);
        return EXIT.ok;
      }),
    );
}
