import type { Command } from 'commander';
import type { RunState } from '../../dag/types.js';
import { UsageError } from '../../errors.js';
import type { RunRow } from '../../store/types.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, formatBytes, formatMs, formatTable, printJson } from '../output.js';

type Run = (action: () => Promise<number>) => Promise<void>;
const RUN_STATES: readonly RunState[] = ['queued', 'running', 'success', 'failed'];

export function registerRunCommands(program: Command, run: Run): void {
  const runs = program.command('runs').description('DAG runs in the database');

  runs
    .command('show')
    .description("one run and its task instances (a mapped task's on one line, counted by state)")
    .argument('<dag-id>')
    .argument('<run-id>')
    .option('--json', 'print { run, tasks, callbacks } as JSON (tasks: every task instance, with its mapIndex; callbacks: those still owed)')
    .action((dagId: string, runId: string, opts: { json?: boolean }, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { showRun, withStore } = await import('../../app/scheduler-ops.js');
        const { describeCallback } = await import('../../scheduler/callbacks.js');
        const { firstLine, instanceRows } = await import('../instance-rows.js');
        const report = await withStore(config, (store) => showRun(store, dagId, runId));
        if (opts.json) {
          printJson(report);
          return EXIT.ok;
        }
        const r = report.run;
        const took = r.startedAt !== null && r.endedAt !== null ? `, took ${formatMs(r.endedAt - r.startedAt)}` : '';
        const why = r.failureReason ? ` [${r.failureReason}]` : '';
        process.stdout.write(`DAG ${r.dagId} run ${r.runId}: ${r.state}${why} (${r.runType}, logical date ${iso(r.logicalDate)}, data interval ${iso(r.dataIntervalStart)} to ${iso(r.dataIntervalEnd)}, DAG version ${r.dagVersion}, queued ${iso(r.queuedAt)}, started ${iso(r.startedAt)}, ended ${iso(r.endedAt)}${took}, scheduler ${r.claimedBy ?? '-'})\n\n`);
        process.stdout.write(
          formatTable(
            ['task', 'state', 'try', 'duration', 'isolation', 'pid', 'exit', 'signal', 'peak rss', 'error'],
            // A mapped task's instances share one row: `square [0..9999]  9998 success, 2 failed`.
            instanceRows(report.tasks, 10, (t) => [t.taskId, t.state, `${t.tryNumber}/${t.maxTries}`, formatMs(t.durationMs), t.isolation, t.pid, t.exitCode, t.signal, formatBytes(t.peakRssBytes), firstLine(t.error)]),
          ),
        );
        for (const c of report.callbacks) process.stdout.write(`owed: ${describeCallback(c)} since ${iso(c.createdAt)}, held by ${c.owner ?? '-'}\n`);
        return EXIT.ok;
      }),
    );

  runs
    .command('list')
    .description('runs, newest first')
    .argument('[dag-id]', 'only the runs of this DAG')
    .option('--state <state>', `only runs in this state (${RUN_STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many runs', '100')
    .option('--json', 'print { runs: [...] } as JSON')
    .action((dagId: string | undefined, opts: { state?: string; limit: string; json?: boolean }, cmd: Command) =>
      run(async () => {
        if (opts.state !== undefined && !RUN_STATES.includes(opts.state as RunState)) throw new UsageError(`--state must be one of ${RUN_STATES.join(', ')}, got '${opts.state}'`);
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be an integer >= 1, got '${opts.limit}'`);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { withStore } = await import('../../app/scheduler-ops.js');
        const list: RunRow[] = await withStore(config, (store) => store.listRuns({ dagId, states: opts.state ? [opts.state as RunState] : undefined, limit }));
        if (opts.json) printJson({ runs: list });
        else if (list.length === 0) process.stdout.write('no runs\n');
        else {
          process.stdout.write(
            formatTable(
              ['dag', 'run', 'type', 'state', 'logical date', 'started', 'duration', 'scheduler'],
              list.map((r) => [r.dagId, r.runId, r.runType, r.state, iso(r.logicalDate), iso(r.startedAt), r.startedAt !== null && r.endedAt !== null ? formatMs(r.endedAt - r.startedAt) : null, r.claimedBy]),
            ),
          );
        }
        return EXIT.ok;
      }),
    );
}

function iso(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}
