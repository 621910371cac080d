import type { Command } from 'commander';
import type { parseDagFolder } from '../../app/dag-files.js';
import { KilnError } from '../../errors.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, formatBytes, formatMs, formatTable, printJson } from '../output.js';
import { parseDateFlag, parseParams } from '../params.js';

export function registerDagCommands(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  const dags = program.command('dags').description('work with DAGs');

  dags
    .command('test')
    .description('run one DAG to completion in this process (no scheduler daemon)')
    .argument('<file-or-dag-id>', 'a DAG file, or the id of a DAG in the DAG folder')
    .option('--executor <name>', 'thread | process | spawn | local | bullmq, or a module path exporting an executor factory')
    .option('--params <json>', 'run parameters as a JSON object')
    .option('--run-id <id>', 'run id (default manual__<timestamp>)')
    .option('--logical-date <date>', 'the run\'s logical date (ISO 8601, UTC unless a zone is given; default now); the data interval is inferred from it')
    .option('--json', 'print the result as JSON (tasks: one entry per task instance, with its mapIndex)')
    .action((target: string, opts: { executor?: string; params?: string; runId?: string; logicalDate?: string; json?: boolean }, cmd: Command) =>
      run(async () => {
        const params = parseParams(opts.params);
        const logicalDate = parseDateFlag('--logical-date', opts.logicalDate);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>(), { executor: opts.executor });
        // Loaded per command (here and below): a command pays only for what it uses at start.
        const view = opts.json ? null : new (await import('../live-view.js')).LiveView();
        const { runDagTest } = await import('../../app/dags-test.js');
        const report = await runDagTest(config, target, {
          params, runId: opts.runId, logicalDate, onTaskChange: (ti, all, tasks) => view?.update(ti, all, tasks), log: (m) => process.stderr.write(`kiln: ${m}\n`),
        });
        view?.done();
        if (opts.json) printJson(report);
        else {
          const { firstLine, instanceRows } = await import('../instance-rows.js');
          process.stdout.write(
            formatTable(
              ['task', 'state', 'tries', 'duration', 'isolation', 'exit', 'signal', 'peak rss', 'cpu', 'error'],
              // A mapped task's instances share one row: `square [0..9999]  9998 success, 2 failed`.
              instanceRows(report.tasks, 10, (t) => [t.taskId, t.state, t.tries, formatMs(t.durationMs), t.isolation, t.exitCode, t.signal, formatBytes(t.peakRssBytes), formatMs(t.cpuMs), firstLine(t.error)]),
            ),
          );
          process.stdout.write(`\nDAG ${report.dagId} run ${report.runId}: ${report.state} in ${formatMs(report.durationMs)}\n`);
        }
        return report.state === 'success' ? EXIT.ok : EXIT.failed;
      }),
    );

  dags
    .command('list')
    .description('list the DAGs in the DAG folder, and the files that failed to import')
    .option('--json', 'print as JSON')
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { dagSourcesFolder, parseDagFolder } = await import('../../app/dag-files.js');
        const parsed = await parseDagFolder(config.dagsFolder, config.parseTimeoutMs, dagSourcesFolder(config));
        const doc = {
          dags: parsed.filter((p) => p.dag).map((p) => ({ dagId: p.dag!.dagId, file: p.file, tasks: p.dag!.tasks.length, schedule: p.dag!.schedule })),
          importErrors: parsed.filter((p) => p.error).map((p) => ({ file: p.file, error: p.error! })),
        };
        await recordParse(config.databaseUrl, parsed).catch(() => {});
        if (opts.json) printJson(doc);
        else {
          process.stdout.write(doc.dags.length > 0 ? formatTable(['dag', 'tasks', 'schedule', 'file'], doc.dags.map((d) => [d.dagId, d.tasks, d.schedule ?? 'manual', d.file])) : `no DAGs in ${config.dagsFolder}\n`);
          if (doc.importErrors.length > 0) process.stdout.write(`\nimport errors:\n${doc.importErrors.map((e) => `  ${e.error}`).join('\n')}\n`);
        }
        return EXIT.ok;
      }),
    );

  dags
    .command('versions')
    .description('list the stored versions of a DAG (a run executes the version it was created with)')
    .argument('<dag-id>')
    .option('--json', 'print as JSON')
    .action((dagId: string, opts: { json?: boolean }, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { withStore } = await import('../../app/scheduler-ops.js');
        const { current, versions } = await withStore(config, async (store) => ({ current: (await store.getDag(dagId))?.version ?? null, versions: await store.listDagVersions(dagId) }));
        if (versions.length === 0) throw new KilnError('DAG_NOT_FOUND', `the database has no version of DAG '${dagId}' (run \`kiln dags list\` or a scheduler to record the DAG folder)`);
        const rows = versions.map((v) => ({ version: v.version, createdAt: new Date(v.createdAt).toISOString(), runs: v.runs, current: v.version === current }));
        if (opts.json) printJson({ dagId, versions: rows });
        else process.stdout.write(formatTable(['version', 'first parsed', 'runs', 'current'], rows.map((r) => [r.version, r.createdAt, r.runs, r.current ? 'yes' : '-'])));
        return EXIT.ok;
      }),
    );
}

/** `dags list` also refreshes what the store knows, when a store already exists. */
async function recordParse(databaseUrl: string, parsed: Awaited<ReturnType<typeof parseDagFolder>>): Promise<void> {
  if (!databaseUrl.startsWith('postgres') && !(await import('node:fs')).existsSync(databaseUrl.replace(/^(sqlite|file):(\/\/)?/, ''))) return;
  const { withStore } = await import('../../app/scheduler-ops.js');
  await withStore({ databaseUrl }, async (store) => {
    const now = Date.now();
    for (const p of parsed) {
      if (p.dag && p.version) {
        await store.upsertDag({ dagId: p.dag.dagId, file: p.file, version: p.version, serialized: p.dag });
        await store.clearImportError(p.file);
      } else if (p.error) await store.setImportError(p.file, p.error, now);
    }
  });
}
