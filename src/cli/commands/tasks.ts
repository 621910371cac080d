import type { Command } from 'commander';
import { readTaskLog, runTaskByHand, withStore } from '../../app/scheduler-ops.js';
import { UsageError } from '../../errors.js';
import { clearTasks, loadRun, markTask } from '../../scheduler/operations.js';
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
    .option('--json', 'print { cleared, skipped, conflicts } as JSON')
    .action((dagId: string, runId: string, taskId: string | undefined, opts: { downstream?: boolean; json?: boolean }, cmd: Command) =>
      run(async () => {
        if (opts.downstream && taskId === undefined) throw new UsageError('--downstream needs a <task-id>');
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const result = await withStore(config, async (store) => clearTasks(store, await loadRun(store, dagId, runId), { taskId, downstream: opts.downstream }));
        if (opts.json) printJson(result);
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
    .action((dagId: string, runId: string, taskId: string, state: string, _opts: unknown, cmd: Command) =>
      run(async () => {
        if (state !== 'success' && state !== 'failed') throw new UsageError(`<state> must be success or failed, got '${state}'`);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const result = await withStore(config, async (store) => markTask(store, await loadRun(store, dagId, runId), taskId, state));
        process.stdout.write(result.changed ? `marked ${taskId} ${state}; run ${runId} is ${result.runState}\n` : `${taskId} already is ${state}\n`);
        return EXIT.ok;
      }),
    );

  tasks
    .command('logs')
    .description("print the log of a task's try (stdout, stderr and ctx.log)")
    .argument('<dag-id>')
    .argument('<run-id>')
    .argument('<task-id>')
    .option('--try <n>', 'which try (default: the latest)')
    .action((dagId: string, runId: string, taskId: string, opts: { try?: string }, cmd: Command) =>
      run(async () => {
        const tryNumber = opts.try === undefined ? undefined : Number(opts.try);
        if (tryNumber !== undefined && (!Number.isInteger(tryNumber) || tryNumber < 1)) throw new UsageError(`--try must be an integer >= 1, got '${opts.try}'`);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const log = await withStore(config, (store) => readTaskLog(store, config, { dagId, runId, taskId }, tryNumber));
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
