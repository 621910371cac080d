/** `kiln dags trigger|pause|unpause`: changes to DAGs made beside a running scheduler, through the database. */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, printJson } from '../output.js';
import { parseDateFlag, parseParams } from '../params.js';

const iso = (t: number): string => new Date(t).toISOString();

type Run = (action: () => Promise<number>) => Promise<void>;

export function registerDagOpsCommands(program: Command, run: Run): void {
  const dags = program.commands.find((c) => c.name() === 'dags') ?? program.command('dags').description('work with DAGs');

  dags
    .command('trigger')
    .description('queue a manual run of a DAG; a running scheduler (this or another process) picks it up')
    .argument('<dag-id>', 'the DAG to run')
    .option('--params <json>', 'run parameters as a JSON object (merged over the DAG params)')
    .option('--run-id <id>', 'run id (default manual__<timestamp>)')
    .option('--logical-date <date>', 'the run\'s logical date (ISO 8601, UTC unless a zone is given; default now); its data interval is inferred from it')
    .option('--count <n>', 'queue this many runs at once (ids manual__<timestamp>, one millisecond apart)', '1')
    .option('--json', 'print the queued runs as JSON')
    .action((dagId: string, opts: { params?: string; runId?: string; logicalDate?: string; count: string; json?: boolean }, cmd: Command) =>
      run(async () => {
        const params = parseParams(opts.params);
        const logicalDate = parseDateFlag('--logical-date', opts.logicalDate);
        const count = Number(opts.count);
        if (!Number.isInteger(count) || count < 1) throw new UsageError(`--count must be an integer >= 1, got '${opts.count}'`);
        if (count > 1 && opts.runId !== undefined) throw new UsageError('--run-id names one run; it cannot be used with --count');
        if (count > 1 && logicalDate !== undefined) throw new UsageError('--logical-date names one run; it cannot be used with --count (see kiln backfill)');
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const [{ withStore }, { triggerDagRuns }] = await Promise.all([import('../../app/scheduler-ops.js'), import('../../app/trigger.js')]);
        const { runs, paused } = await withStore(config, (store) => triggerDagRuns(store, config, dagId, { params, runId: opts.runId, logicalDate, count }));
        if (opts.json) printJson({ dagId, paused, runs: runs.map((r) => ({ runId: r.runId, state: r.state, runType: r.runType, logicalDate: iso(r.logicalDate), dataIntervalStart: iso(r.dataIntervalStart), dataIntervalEnd: iso(r.dataIntervalEnd), params: r.params })) });
        else {
          for (const r of runs) process.stdout.write(`queued run ${r.runId} of DAG ${dagId}\n`);
          if (paused) process.stdout.write(`DAG ${dagId} is paused: its runs wait until \`kiln dags unpause ${dagId}\`\n`);
        }
        return EXIT.ok;
      }),
    );

  for (const [name, paused] of [['pause', true], ['unpause', false]] as const) {
    dags
      .command(name)
      .description(paused ? 'stop creating scheduled runs of a DAG and starting its queued runs (running runs finish)' : 'let a paused DAG run again')
      .argument('<dag-id>')
      .action((dagId: string, _opts: unknown, cmd: Command) =>
        run(async () => {
          const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
          const [{ withStore }, { setDagPaused }] = await Promise.all([import('../../app/scheduler-ops.js'), import('../../app/dags-view.js')]);
          await withStore(config, (store) => setDagPaused(store, config, dagId, paused));
          process.stdout.write(`DAG ${dagId} ${paused ? 'paused' : 'unpaused'}\n`);
          return EXIT.ok;
        }),
      );
  }
}
