import type { Command } from 'commander';
import { REPROCESS_MODES, type Reprocess } from '../../store/types.js';
import { UsageError } from '../../errors.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, formatTable, printJson } from '../output.js';
import { parseDateFlag, parseParams } from '../params.js';

interface BackfillFlags {
  from: string;
  to: string;
  reprocess: string;
  maxActiveRuns?: string;
  backwards?: boolean;
  dryRun?: boolean;
  queue?: boolean;
  params?: string;
  executor?: string;
  json?: boolean;
}

export function registerBackfillCommand(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  program
    .command('backfill')
    .description('one run of type backfill per logical date of a range (the DAG\'s schedule points from --from to --to, inclusive); by default driven to completion in this process')
    .argument('<dag-id>', 'the id of a DAG in the DAG folder (or a DAG file)')
    .requiredOption('--from <date>', 'first logical date (ISO 8601; a date alone is midnight UTC)')
    .requiredOption('--to <date>', 'last logical date, inclusive')
    .option('--reprocess <mode>', `dates that already have a finished run: none (skip them), failed (run the failed ones again), completed (run every finished one again); a queued or running run is never touched`, 'none')
    .option('--max-active-runs <n>', "most runs of the backfill queued or running at once (default: the DAG's maxActiveRuns)")
    .option('--backwards', 'newest date first')
    .option('--dry-run', 'print the dates and what would happen to each; change nothing')
    .option('--queue', 'store the backfill and queue its first runs; the schedulers drive the rest')
    .option('--params <json>', 'params of every run, as a JSON object (checked against the DAG\'s paramsSchema)')
    .option('--executor <name>', 'thread | process | spawn | local, or a module path exporting an executor factory')
    .option('--json', 'print the result as JSON')
    .action((dagId: string, opts: BackfillFlags, cmd: Command) =>
      run(async () => {
        const from = parseDateFlag('--from', opts.from)!;
        const to = parseDateFlag('--to', opts.to)!;
        if (!(REPROCESS_MODES as readonly string[]).includes(opts.reprocess)) throw new UsageError(`--reprocess must be one of ${REPROCESS_MODES.join(', ')}, got '${opts.reprocess}'`);
        const maxActiveRuns = opts.maxActiveRuns === undefined ? undefined : Number(opts.maxActiveRuns);
        if (maxActiveRuns !== undefined && !(Number.isInteger(maxActiveRuns) && maxActiveRuns >= 1)) throw new UsageError(`--max-active-runs must be an integer >= 1, got '${opts.maxActiveRuns}'`);
        if (opts.dryRun && opts.queue) throw new UsageError('--dry-run and --queue cannot go together');
        const params = parseParams(opts.params);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>(), { executor: opts.executor });
        const { runBackfill } = await import('../../app/backfill.js');
        const report = await runBackfill(config, dagId, {
          from, to, reprocess: opts.reprocess as Reprocess, maxActiveRuns, backwards: opts.backwards, dryRun: opts.dryRun, queue: opts.queue, params,
          log: opts.json ? undefined : (m) => process.stderr.write(`kiln: ${m}\n`),
        });
        if (opts.json) printJson(report);
        else {
          process.stdout.write(formatTable(['logical date', 'action', 'run', 'state', 'why'], report.dates.map((d) => [d.logicalDate, d.action, d.runId, d.state ?? null, d.why ?? null])));
          const summary = report.mode === 'dry-run' ? 'dry run: nothing was changed' : report.mode === 'queued' ? `backfill ${report.backfillId} queued for the schedulers` : `backfill ${report.backfillId}: ${report.state}`;
          process.stdout.write(`\n${summary}\n`);
        }
        return report.state === 'failed' ? EXIT.failed : EXIT.ok;
      }),
    );
}
