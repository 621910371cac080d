import type { Command } from 'commander';
import { createStore } from '../../store/index.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT } from '../output.js';

export function registerDbCommands(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  const db = program.command('db').description('the metadata database');
  db.command('migrate')
    .description('create or upgrade the schema of the configured database')
    .action((_opts: unknown, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const store = await createStore(config.databaseUrl);
        try {
          await store.migrate();
        } finally {
          await store.close();
        }
        process.stdout.write(`migrated ${store.dialect} database\n`);
        return EXIT.ok;
      }),
    );
}
