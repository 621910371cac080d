import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, printJson } from '../output.js';

type Run = (action: () => Promise<number>) => Promise<void>;

export function registerTaskCommands(program: Command, run: Run): void {
  const tasks = program.command('tasks').description('task instances of a run');

  tasks
    .command('clear')
    .description('reset task instances to none so they run again (new try numbers), and their run to queued; queued and running ones are left alone')
    .argument('<dag-id>')
    .argument('<run-id>')
    .argument('[task-id]', 'only this task (default: every task of the run)')
    .option('--downstream', 'also clear every task downstream of <task-id>')
    .option('--dry-run', 'print what would be cleared and change nothing')
    .option('--json', 'print { cleared, skipped, conflicts } as JSON')
    .action((dagId: string, runId: string, taskId: string | undefined, opts: { downstream?: boolean; dryRun?: boolean; json?: boolean }, cmd: Command) =>
      run(async () => {
        if (opts.downstream && taskId === undefined) throw new UsageError('--downstream needs a <task-id>');
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const [{ withStore }, { clearTaskInstances }] = await Promise.all([import('../../app/scheduler-ops.js'), import('../../app/task-ops.js')]);
        const result = await withStore(config, (store) => clearTaskInstances(store, dagId, runId, { taskId, downstream: opts.downstream, dryRun: opts.dryRun }));
        const { dryRun, cleared, skipped, conflicts } = result;
        if (opts.json) printJson(dryRun ? { cleared, skipped, conflicts, dryRun } : { cleared, skipped, conflicts });
        else if (dryRun) process.stdout.write(result.cleared.length > 0 ? `would clear ${result.cleared.join(', ')}\n` : 'nothing to clear\n');
        else {
          process.stdout.write(result.cleared.length > 0 ? `cleared ${result.cleared.join(', ')}; run ${runId} is queued again\n` : 'nothing to clear\n');
          for (const s of result.skipped) process.stdout.write(`left ${s.taskId} alone: it is ${s.state}\n`);
          for (const c of result.conflicts) process.stdout.write(`${c} changed meanwhile and was not cleared; run the command again\n`);
        }
        return result.conflicts.length > 0 ? EXIT.failed : EXIT.ok;
      }),
    );

  tasks
    .command('mark')
    .description('set a task instance to success or failed by hand (a running try is cancelled by its scheduler)')
    .argument('<dag-id>')
    .argument('<run-id>')
    .argument('<task-id>')
    .argument('<state>', 'success | failed')
    .option('--dry-run', 'print what would change and change nothing')
    .action((dagId: string, runId: string, taskId: string, state: string, opts: { dryRun?: boolean }, cmd: Command) =>
      run(async () => {
        if (state !== 'success' && state !== 'failed') throw new UsageError(`<state> must be success or failed, got '${state}'`);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const [{ withStore }, { markTaskInstance }] = await Promise.all([import('../../app/scheduler-ops.js'), import('../../app/task-ops.js')]);
        const result = await withStore(config, (store) => markTaskInstance(store, dagId, runId, taskId, state, { dryRun: opts.dryRun }));
        const verb = result.dryRun ? 'would mark' : 'marked';
        process.stdout.write(result.changed.length > 0 ? `${verb} ${taskId} ${state}; run ${runId} ${result.dryRun ? 'would be' : 'is'} ${result.runState}\n` : `${taskId} already is ${state}\n`);
        return EXIT.ok;
      }),
    );

  tasks
    .command('logs')
    .description("print the log of a task's try (stdout, stderr and ctx.log), or with --callbacks the logs of its callbacks")
    .argument('<dag-id>')
    .argument('<run-id>')
    .argument('[task-id]', "the task (with --callbacks and no task: the DAG's onSuccess/onFailure)")
    .option('--try <n>', 'which try (default: the latest; with --callbacks: every try)')
    .option('--callbacks', "print the logs of the task's callbacks (onSuccess, onFailure, onRetry, onSkipped) instead")
    .action((dagId: string, runId: string, taskId: string | undefined, opts: { try?: string; callbacks?: boolean }, cmd: Command) =>
      run(async () => {
        const tryNumber = opts.try === undefined ? undefined : Number(opts.try);
        if (tryNumber !== undefined && (!Number.isInteger(tryNumber) || tryNumber < 1)) throw new UsageError(`--try must be an integer >= 1, got '${opts.try}'`);
        if (taskId === undefined && !opts.callbacks) throw new UsageError('missing <task-id> (only --callbacks may go without one)');
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        if (opts.callbacks) {
          const { readCallbackLogs, showRun, withStore } = await import('../../app/scheduler-ops.js');
          await withStore(config, (store) => showRun(store, dagId, runId)); // a usage error naming the run if it does not exist
          const logs = readCallbackLogs(config, { dagId, runId, taskId }, tryNumber);
          if (logs.length === 0) process.stderr.write(`(no callback of ${taskId === undefined ? `DAG ${dagId}` : `task ${taskId}`} in run ${runId} wrote to its log)\n`);
          for (const log of logs) process.stdout.write(`--- ${log.kind} callback${log.tryNumber === null ? '' : `, try ${log.tryNumber}`} (${log.file})\n${log.text}${log.text.endsWith('\n') ? '' : '\n'}`);
          return EXIT.ok;
        }
        const { readTaskLog, withStore } = await import('../../app/scheduler-ops.js');
        const log = await withStore(config, (store) => readTaskLog(store, config, { dagId, runId, taskId: taskId! }, tryNumber));
        if (log.text === null) process.stderr.write(`(this try wrote nothing to its log, ${log.file})\n`);
        else process.stdout.write(log.text);
        return EXIT.ok;
      }),
    );

  tasks
    .command('run')
    .description('run one task of a run in this process, by hand (records nothing in the database; XCom is read from it)')
    .argument('<dag-id>')
    .argument('<task-id>')
    .argument('<run-id>')
    .option('--json', 'print the result as JSON')
    .action((dagId: string, taskId: string, runId: string, opts: { json?: boolean }, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { runTaskByHand, withStore } = await import('../../app/scheduler-ops.js');
        const { ti, result } = await withStore(config, (store) => runTaskByHand(store, config, { dagId, runId, taskId }));
        if (opts.json) printJson({ dagId, runId, taskId, tryNumber: ti.tryNumber, ...result });
        else {
          const error = result.error ? `: ${result.error.code ? `${result.error.code}: ` : ''}${result.error.message}` : '';
          const value = result.outcome === 'success' && result.value !== undefined ? ` -> ${JSON.stringify(result.value)}` : '';
          process.stderr.write(`task ${taskId} of run ${runId}: ${result.outcome}${value}${error}\n`);
        }
        return result.outcome === 'failed' ? EXIT.failed : EXIT.ok;
      }),
    );
}

