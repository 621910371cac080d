import type { Command } from 'commander';
import { parseDurationMs } from '../../dag/duration.js';
import { UsageError } from '../../errors.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, printJson } from '../output.js';

export function registerDbCommands(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  const db = program.command('db').description('the metadata database');
  db.command('migrate')
    .description('create or upgrade the schema of the configured database')
    .action((_opts: unknown, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        // withStore migrates the database before it hands the store over.
        const { withStore } = await import('../../app/scheduler-ops.js');
        const dialect = await withStore(config, async (store) => store.dialect);
        process.stdout.write(`migrated ${dialect} database\n`);
        return EXIT.ok;
      }),
    );
  db.command('clean')
    .description('delete finished runs (success or failed) that ended more than <duration> ago, with their task instances, XComs and log files; queued and running runs are never touched')
    .requiredOption('--older-than <duration>', "how old a run's end must be: a duration with a unit, like '30d', '12h' or '90m'")
    .option('--dry-run', 'report what would be deleted, delete nothing')
    .option('--json', 'print { dryRun, endedBefore, runs, taskInstances, xcoms, logFiles, logBytes, logErrors } as JSON')
    .action((opts: { olderThan: string; dryRun?: boolean; json?: boolean }, cmd: Command) =>
      run(async () => {
        const olderThanMs = olderThan(opts.olderThan);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { withStore } = await import('../../app/scheduler-ops.js');
        const { cleanDatabase, describeClean } = await import('../../app/db-clean.js');
        const report = await withStore(config, (store) => cleanDatabase(store, config, { olderThanMs, dryRun: opts.dryRun }));
        if (opts.json) printJson(report);
        else process.stdout.write(`${describeClean(report)}\n`);
        for (const e of report.logErrors) process.stderr.write(`kiln: could not remove logs: ${e}\n`);
        return EXIT.ok;
      }),
    );
}

/**
 * A unit is required: this flag deletes history, and a bare `30` (30 ms, as other duration
 * flags read it) would delete nearly every finished run.
 */
function olderThan(raw: string): number {
  const ms = /^\s*\d+(\.\d+)?\s*$/.test(raw) ? undefined : parseDurationMs(raw);
  if (ms === undefined) throw new UsageError(`--older-than must be a duration with a unit, like '30d', '12h' or '90m', got '${raw}'`);
  return ms;
}
