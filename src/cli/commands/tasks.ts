import type { Command } from 'commander';
import { parseMapIndex } from '../../app/instance-summary.js';
import { UsageError } from '../../errors.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, printJson } from '../output.js';

type Run = (action: () => Promise<number>) => Promise<void>;

const MAP_INDEX_HELP = 'one instance of a mapped task: its map index (-1: a task that is not mapped)';

/** `--map-index N`: an integer >= -1, checked before anything is opened. */
const mapIndexFlag = (raw: string | undefined): number | undefined => parseMapIndex(raw, '--map-index');

export function registerTaskCommands(program: Command, run: Run): void {
  const tasks = program.command('tasks').description('task instances of a run');

  tasks
    .command('clear')
    .description('reset task instances to none so they run again (new try numbers), and their run to queued; queued and running ones are left alone')
    .argument('<dag-id>')
    .argument('<run-id>')
    .argument('[task-id]', 'only this task, every instance of it (default: every task of the run)')
    .option('--map-index <n>', `only this instance of <task-id>: ${MAP_INDEX_HELP}`)
    .option('--downstream', 'also clear every task downstream of <task-id> (all their instances)')
    .option('--dry-run', 'print what would be cleared and change nothing')
    .option('--json', 'print { cleared, skipped, conflicts } as JSON (task-instance ids: `task`, `task[3]` for a mapped one)')
    .action((dagId: string, runId: string, taskId: string | undefined, opts: { mapIndex?: string; downstream?: boolean; dryRun?: boolean; json?: boolean }, cmd: Command) =>
      run(async () => {
        const mapIndex = mapIndexFlag(opts.mapIndex);
        if (opts.downstream && taskId === undefined) throw new UsageError('--downstream needs a <task-id>');
        if (mapIndex !== undefined && taskId === undefined) throw new UsageError('--map-index needs a <task-id>');
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const [{ withStore }, { clearTaskInstances }, { describeInstanceIds }] = await Promise.all([
          import('../../app/scheduler-ops.js'), import('../../app/task-ops.js'), import('../instance-rows.js'),
        ]);
        const result = await withStore(config, (store) => clearTaskInstances(store, dagId, runId, { taskId, mapIndex, downstream: opts.downstream, dryRun: opts.dryRun }));
        const { dryRun, cleared, skipped, conflicts } = result;
        if (opts.json) printJson(dryRun ? { cleared, skipped, conflicts, dryRun } : { cleared, skipped, conflicts });
        else if (dryRun) process.stdout.write(result.cleared.length > 0 ? `would clear ${describeInstanceIds(result.cleared)}\n` : 'nothing to clear\n');
        else {
          process.stdout.write(result.cleared.length > 0 ? `cleared ${describeInstanceIds(result.cleared)}; run ${runId} is queued again\n` : 'nothing to clear\n');
          for (const s of result.skipped) process.stdout.write(`left ${s.mapIndex < 0 ? s.taskId : `${s.taskId}[${s.mapIndex}]`} alone: it is ${s.state}\n`);
          if (result.conflicts.length > 0) process.stdout.write(`${describeInstanceIds(result.conflicts)} changed meanwhile and ${result.conflicts.length === 1 ? 'was' : 'were'} not cleared; run the command again\n`);
        }
        return result.conflicts.length > 0 ? EXIT.failed : EXIT.ok;
      }),
    );

  tasks
    .command('mark')
    .description('set a task instance to success or failed by hand (a running try is cancelled by its scheduler); a mapped task needs --map-index')
    .argument('<dag-id>')
    .argument('<run-id>')
    .argument('<task-id>')
    .argument('<state>', 'success | failed')
    .option('--map-index <n>', `which instance (required for a mapped task): ${MAP_INDEX_HELP}`)
    .option('--dry-run', 'print what would change and change nothing')
    .action((dagId: string, runId: string, taskId: string, state: string, opts: { mapIndex?: string; dryRun?: boolean }, cmd: Command) =>
      run(async () => {
        if (state !== 'success' && state !== 'failed') throw new UsageError(`<state> must be success or failed, got '${state}'`);
        const mapIndex = mapIndexFlag(opts.mapIndex);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const [{ withStore }, { markTaskInstance }] = await Promise.all([import('../../app/scheduler-ops.js'), import('../../app/task-ops.js')]);
        const result = await withStore(config, (store) => markTaskInstance(store, dagId, runId, taskId, state, { dryRun: opts.dryRun, mapIndex }));
        const verb = result.dryRun ? 'would mark' : 'marked';
        const name = mapIndex === undefined || mapIndex < 0 ? taskId : `${taskId}[${mapIndex}]`;
        process.stdout.write(result.changed.length > 0 ? `${verb} ${name} ${state}; run ${runId} ${result.dryRun ? 'would be' : 'is'} ${result.runState}\n` : `${name} already is ${state}\n`);
        return EXIT.ok;
      }),
    );

  tasks
    .command('logs')
    .description("print the log of a task instance's try (stdout, stderr and ctx.log), or with --callbacks the logs of its callbacks; a mapped task needs --map-index")
    .argument('<dag-id>')
    .argument('<run-id>')
    .argument('[task-id]', "the task (with --callbacks and no task: the DAG's onSuccess/onFailure)")
    .option('--map-index <n>', `which instance (required for a mapped task): ${MAP_INDEX_HELP}`)
    .option('--try <n>', 'which try (default: the latest; with --callbacks: every try)')
    .option('--callbacks', "print the logs of the task's callbacks (onSuccess, onFailure, onRetry, onSkipped) instead")
    .action((dagId: string, runId: string, taskId: string | undefined, opts: { mapIndex?: string; try?: string; callbacks?: boolean }, cmd: Command) =>
      run(async () => {
        const tryNumber = opts.try === undefined ? undefined : Number(opts.try);
        if (tryNumber !== undefined && (!Number.isInteger(tryNumber) || tryNumber < 1)) throw new UsageError(`--try must be an integer >= 1, got '${opts.try}'`);
        const mapIndex = mapIndexFlag(opts.mapIndex);
        if (taskId === undefined && !opts.callbacks) throw new UsageError('missing <task-id> (only --callbacks may go without one)');
        if (taskId === undefined && mapIndex !== undefined) throw new UsageError('--map-index needs a <task-id>');
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        if (opts.callbacks) {
          const [{ readCallbackLogs, showRun, withStore }, { getInstanceOrThrow }] = await Promise.all([import('../../app/scheduler-ops.js'), import('../../app/task-instances.js')]);
          // A usage error naming the run, or the task's instances, if what is named does not exist.
          const ti = await withStore(config, async (store) => (taskId === undefined ? (await showRun(store, dagId, runId), null) : getInstanceOrThrow(store, { dagId, runId, taskId, mapIndex })));
          const logs = readCallbackLogs(config, { dagId, runId, taskId, mapIndex: ti?.mapIndex }, tryNumber);
          const name = ti === null ? `DAG ${dagId}` : `task ${ti.mapIndex < 0 ? ti.taskId : `${ti.taskId}[${ti.mapIndex}]`}`;
          if (logs.length === 0) process.stderr.write(`(no callback of ${name} in run ${runId} wrote to its log)\n`);
          for (const log of logs) process.stdout.write(`--- ${log.kind} callback${log.tryNumber === null ? '' : `, try ${log.tryNumber}`} (${log.file})\n${log.text}${log.text.endsWith('\n') ? '' : '\n'}`);
          return EXIT.ok;
        }
        const { readTaskLog, withStore } = await import('../../app/scheduler-ops.js');
        const log = await withStore(config, (store) => readTaskLog(store, config, { dagId, runId, taskId: taskId!, mapIndex }, tryNumber));
        if (log.text === null) process.stderr.write(`(this try wrote nothing to its log, ${log.file})\n`);
        else process.stdout.write(log.text);
        return EXIT.ok;
      }),
    );

  tasks
    .command('run')
    .description('run one task instance of a run in this process, by hand (records nothing in the database; XCom is read from it); a mapped task needs --map-index')
    .argument('<dag-id>')
    .argument('<task-id>')
    .argument('<run-id>')
    .option('--map-index <n>', `which instance (required for a mapped task; ctx.item is its item): ${MAP_INDEX_HELP}`)
    .option('--json', 'print the result as JSON')
    .action((dagId: string, taskId: string, runId: string, opts: { mapIndex?: string; json?: boolean }, cmd: Command) =>
      run(async () => {
        const mapIndex = mapIndexFlag(opts.mapIndex);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { runTaskByHand, withStore } = await import('../../app/scheduler-ops.js');
        const { ti, result } = await withStore(config, (store) => runTaskByHand(store, config, { dagId, runId, taskId, mapIndex }));
        if (opts.json) printJson({ dagId, runId, taskId, mapIndex: ti.mapIndex, tryNumber: ti.tryNumber, ...result });
        else {
          const error = result.error ? `: ${result.error.code ? `${result.error.code}: ` : ''}${result.error.message}` : '';
          const value = result.outcome === 'success' && result.value !== undefined ? ` -> ${JSON.stringify(result.value)}` : '';
          process.stderr.write(`task ${ti.mapIndex < 0 ? taskId : `${taskId}[${ti.mapIndex}]`} of run ${runId}: ${result.outcome}${value}${error}\n`);
        }
        return result.outcome === 'failed' ? EXIT.failed : EXIT.ok;
      }),
    );
}
