#!/usr/bin/env node
/**
 * kiln's soak: 100,000 task instances (1,000 runs x 100 tasks, half thread and half process
 * isolation, ~1% failing their first try and passing on the retry, a log line each) through
 * one long-running `kiln scheduler --exit-when-idle`, the real CLI in dist/ run in a scratch
 * project, on SQLite and on PostgreSQL. From outside, once a second: the scheduler's RSS,
 * its worker processes' RSS, its open fds, the database and log sizes, and progress.
 *
 *   npm run soak                        both databases, 1,000 runs each (builds first)
 *   npm run soak -- --quick             100 runs x 100 tasks each: a smoke of the harness
 *   npm run soak -- --only sqlite       one database (sqlite | postgres)
 *   npm run soak -- --batch 50          trigger 50 runs at a time as it goes (default: all
 *                                       before the scheduler starts; bench/lib/soak-run.mjs says why)
 *   node bench/soak.mjs --render bench/results/soak-<date>.json   the report again
 *
 * Writes bench/results/soak-<date>[-quick].json and .md, charts in soak-<date>[-quick]/.
 * PostgreSQL: KILN_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test); the
 * soak creates its own schema there and drops it. The scratch projects live in
 * bench/results/tmp/ and are removed after the last soak, not between two (removing 100,000
 * try logs takes a minute or more and would load the next soak's disk; --keep leaves them).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/machine.mjs';
import { analyzeSoak } from './lib/soak-analyze.mjs';
import { createSoakProject, KILN_CLI, probePostgres } from './lib/soak-project.mjs';
import { renderSoakReport } from './lib/soak-render.mjs';
import { runSoak } from './lib/soak-run.mjs';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
const DATABASES = ['sqlite', 'postgres'];
const SCALES = {
  full: { runs: 1000, tasksPerRun: 100 },
  quick: { runs: 100, tasksPerRun: 100 },
};
// The DAG (bench/lib/soak-project.mjs): retries 1, 1 s apart; a first try fails when a hash
// of (run id, task id) is divisible by 100; kiln's default maxActiveRuns.
const DAG = { tasks: 100, failOneIn: 100, retryDelay: '1s', maxActiveRuns: 16 };

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
    keep: { type: 'boolean', default: false },
    batch: { type: 'string' },
    render: { type: 'string' },
  },
});

if (args.render) {
  const file = resolve(args.render);
  writeReport(JSON.parse(readFileSync(file, 'utf8')), dirname(file));
  process.exit(0);
}

const scale = args.quick ? 'quick' : 'full';
const batchRuns = args.batch === undefined ? null : Number(args.batch);
if (batchRuns !== null && !(Number.isInteger(batchRuns) && batchRuns > 0)) throw new Error(`--batch must be a positive integer, got '${args.batch}'`);
// In batch mode, more runs are triggered whenever fewer than three batches wait queued.
const params = { ...SCALES[scale], batchRuns, backlogRuns: batchRuns === null ? 0 : 3 * batchRuns, dag: DAG, sampleEveryMs: 1000, logSizeEveryMs: 10_000 };
const only = args.only ? args.only.split(',') : DATABASES;
for (const d of only) if (!DATABASES.includes(d)) throw new Error(`--only: unknown database '${d}' (${DATABASES.join(' | ')})`);
if (!existsSync(KILN_CLI)) throw new Error('dist/ is missing: run `npm run build` first (npm run soak does)');
const postgresUrl = process.env.KILN_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';

const outDir = resolve(args.out ?? join(BENCH, 'results'));
const day = new Date().toISOString().slice(0, 10);
const name = args.name ?? `soak-${day}${scale === 'full' ? '' : `-${scale}`}`;
const scratch = join(outDir, 'tmp');
mkdirSync(scratch, { recursive: true });

const machine = describeMachine();
const startedAt = Date.now();
console.log(`kiln soak (${scale}): ${params.runs} runs x ${params.tasksPerRun} tasks on ${only.join(', ')}; ${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, node ${machine.node}, load ${machine.loadAverage.map((l) => l.toFixed(2)).join(' ')}`);

const databases = {};
const projects = [];
for (const db of only) {
  console.log(`\n== ${db}`);
  if (db === 'postgres') {
    const why = await probePostgres(postgresUrl);
    if (why !== undefined) {
      databases[db] = { error: `PostgreSQL not reachable at ${postgresUrl}: ${why}` };
      console.error(databases[db].error);
      continue;
    }
  }
  const project = await createSoakProject(join(scratch, `${name}-${db}`), { db, postgresUrl, dag: DAG });
  try {
    const result = await runSoak(project, { ...params, maxActiveRuns: DAG.maxActiveRuns });
    const analysis = analyzeSoak(result);
    databases[db] = { result: compact(result), analysis };
    for (const t of analysis.targets) console.log(`  ${t.met ? 'MET   ' : t.met === false ? 'MISSED' : 'n/a   '} ${t.name}: ${t.verdict}`);
  } catch (err) {
    databases[db] = { error: err.stack ?? String(err) };
    console.error(`  soak on ${db} failed: ${err.message}`);
    if (err.message === 'interrupted') process.exitCode = 130;
  } finally {
    await project.drop().catch((e) => console.error(`  dropping schema ${project.schema}: ${e.message}`));
    projects.push({ db, dir: project.dir });
  }
  if (process.exitCode === 130) break;
}

const doc = {
  kind: 'kiln-soak',
  version: 1,
  scale,
  name,
  machine,
  startedAt: new Date(startedAt).toISOString(),
  durationSec: (Date.now() - startedAt) / 1000,
  loadAverageEnd: loadavg(),
  command: `npm run soak${scale === 'full' && !args.only && batchRuns === null ? '' : ` --${scale === 'quick' ? ' --quick' : ''}${args.only ? ` --only ${args.only}` : ''}${batchRuns === null ? '' : ` --batch ${batchRuns}`}`}`,
  parameters: params,
  databases,
};
mkdirSync(outDir, { recursive: true });
const save = () => {
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(doc, null, 1) + '\n');
  writeReport(doc, outDir);
};
save();

// The scratch projects go last, timed, and the report is written again with the times:
// removing 100,000 per-try log files took minutes on this machine's disk, which a retention
// policy for logs will meet too.
if (!args.keep && projects.length > 0) {
  for (const { db, dir } of projects) {
    console.log(`removing ${relative(process.cwd(), dir)} ...`);
    const t0 = performance.now();
    rmSync(dir, { recursive: true, force: true });
    const removeSec = (performance.now() - t0) / 1000;
    if (databases[db]?.result) databases[db].result.final.logs.removeProjectSec = removeSec;
    console.log(`removed it in ${removeSec.toFixed(1)} s`);
  }
  save();
}
console.log(`(${doc.durationSec.toFixed(0)} s, removing the scratch projects not counted)`);
if (Object.values(databases).some((d) => d.error)) process.exitCode ||= 1;

/**
 * The raw result without the per-task-instance lists (100,000 finish times): the analysis
 * keeps what they gave, and the finish time of every 1% of progress stays for re-checking.
 */
function compact(result) {
  const { endedAt, runTimes, ...final } = result.final;
  const step = Math.max(1, Math.floor(endedAt.length / 100));
  return { ...result, final: { ...final, endedAtEveryPercent: endedAt.filter((_, i) => (i + 1) % step === 0), runs: runTimes.length } };
}

function writeReport(doc, dir) {
  const chartDir = join(dir, doc.name);
  rmSync(chartDir, { recursive: true, force: true });
  mkdirSync(chartDir, { recursive: true });
  const { markdown, charts } = renderSoakReport(doc, { chartDir: doc.name });
  for (const c of charts) writeFileSync(join(chartDir, `${c.name}.svg`), c.svg);
  const mdFile = join(dir, `${doc.name}.md`);
  writeFileSync(mdFile, markdown);
  console.log(`\nwrote ${relative(process.cwd(), join(dir, `${doc.name}.json`))}, ${relative(process.cwd(), mdFile)} and ${charts.length} charts in ${relative(process.cwd(), chartDir)}/`);
}
