#!/usr/bin/env node
/**
 * kiln's benchmark suite. Every case runs its comparison interleaved in one run, in a
 * process of its own, and the whole run is written as
 *   bench/results/<date>.json   every figure, the parameters and the machine
 *   bench/results/<date>.md     the report, with SVG charts in bench/results/<date>/
 *
 *   npm run bench                 the full run (under 20 minutes on 2 cores)
 *   npm run bench -- --quick      under 2 minutes; results named <date>-quick
 *   node bench/run.mjs --only executor-modes,limits --out /tmp/b
 *   node bench/run.mjs --smoke    the smallest run of every case (the harness test)
 *   node bench/run.mjs --only executor-modes --cpu-prof   profiles in bench/results/tmp/
 *   node bench/run.mjs --render bench/results/<date>.json   the report again from stored results
 *
 * For every target the run misses, the workload behind it runs once more under V8's CPU
 * profiler and the report shows where the time went (on by default in the full run;
 * --profile / --no-profile to choose).
 *
 * It imports kiln from dist/: `npm run bench` builds first.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/machine.mjs';
import { renderReport } from './lib/render.mjs';
import { jobsForMissedTargets, runProfileJob } from './lib/profile-jobs.mjs';
import { evaluateTargets } from './lib/targets.mjs';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
export const CASES = ['limits', 'executor-modes', 'bullmq', 'dags-test', 'scheduler-memory', 'prepared', 'metrics', 'web', 'mapping', 'remote', 'postgres'];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    skip: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    profile: { type: 'boolean' },
    'no-profile': { type: 'boolean', default: false },
    options: { type: 'string' },
    render: { type: 'string' },
  },
});

if (args.render) {
  const file = resolve(args.render);
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  await writeReport(doc, dirname(file));
  process.exit(0);
}

const scale = args.smoke ? 'smoke' : args.quick ? 'quick' : 'full';
const only = args.only ? args.only.split(',') : CASES;
const skip = new Set(args.skip ? args.skip.split(',') : []);
for (const c of [...only, ...skip]) if (!CASES.includes(c)) throw new Error(`unknown case '${c}' (cases: ${CASES.join(', ')})`);
if (!existsSync(join(BENCH, '../dist/src/app/context.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)');

const outDir = resolve(args.out ?? join(BENCH, 'results'));
const day = new Date().toISOString().slice(0, 10);
const name = args.name ?? (scale === 'full' ? day : `${day}-${scale}`);
mkdirSync(outDir, { recursive: true });
const scratch = join(outDir, 'tmp');
mkdirSync(scratch, { recursive: true });

const machine = describeMachine();
const startedAt = Date.now();
console.log(`kiln bench (${scale}): ${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, node ${machine.node}, load ${machine.loadAverage.map((l) => l.toFixed(2)).join(' ')}`);

const cases = {};
for (const id of only.filter((c) => !skip.has(c))) {
  const mod = await import(`./cases/${id}.mjs`);
  const resultFile = join(scratch, `${name}-${id}.json`);
  rmSync(resultFile, { force: true });
  const flags = [...(mod.nodeFlags ?? [])];
  if (args['cpu-prof']) flags.push('--cpu-prof', `--cpu-prof-dir=${scratch}`, `--cpu-prof-name=${name}-${id}.cpuprofile`);
  const loadBefore = loadavg();
  const t0 = performance.now();
  console.log(`\n== ${id}: ${mod.title}`);
  // A case that dies is run once more (a shared machine: another user's rebuild of dist/ or
  // an OOM kill); the report says so.
  let code = await runChild([...flags, join(BENCH, 'lib/case-child.mjs'), id, scale, resultFile, args.options ?? '{}']);
  let firstError = null;
  if (code !== 0 || !existsSync(resultFile)) {
    firstError = `the case process exited with code ${code}`;
    console.log(`== ${id}: ${firstError}; running it once more`);
    code = await runChild([...flags, join(BENCH, 'lib/case-child.mjs'), id, scale, resultFile, args.options ?? '{}']);
  }
  const durationSec = (performance.now() - t0) / 1000;
  const entry = { title: mod.title, durationSec, loadAverageBefore: loadBefore, loadAverageAfter: loadavg(), nodeFlags: flags, ...(firstError ? { retriedAfter: firstError } : {}) };
  if (code === 0 && existsSync(resultFile)) entry.result = JSON.parse(readFileSync(resultFile, 'utf8'));
  else entry.error = `the case process exited with code ${code}`;
  cases[id] = entry;
  console.log(`== ${id}: ${entry.error ?? 'done'} in ${durationSec.toFixed(1)} s`);
}

const doc = {
  kind: 'kiln-bench',
  version: 1,
  scale,
  name,
  machine,
  startedAt: new Date(startedAt).toISOString(),
  durationSec: (Date.now() - startedAt) / 1000,
  loadAverageEnd: loadavg(),
  command: scale === 'full' ? 'npm run bench' : `npm run bench -- --${scale}`,
  cases,
};
doc.targets = evaluateTargets(doc);
const profile = !args['no-profile'] && (args.profile ?? scale === 'full');
doc.profiles = [];
if (profile) {
  const jobs = jobsForMissedTargets(doc.targets, scratch);
  for (const job of jobs) {
    console.log(`\n== profile: ${job.label} (explains: ${job.targets.join('; ')})`);
    try {
      doc.profiles.push(await runProfileJob(job, { tmpDir: scratch, outDir: scratch, name }));
    } catch (err) {
      doc.profiles.push({ ...job, error: err.message });
      console.error(`profile failed: ${err.message}`);
    }
  }
  doc.durationSec = (Date.now() - startedAt) / 1000;
}
const jsonFile = join(outDir, `${name}.json`);
writeFileSync(jsonFile, JSON.stringify(doc, null, 2) + '\n');
await writeReport(doc, outDir);
console.log(`(${doc.durationSec.toFixed(0)} s)`);
for (const t of doc.targets) console.log(`  ${t.met === true ? 'MET   ' : t.met === false ? 'MISSED' : 'n/a   '} ${t.name}: ${t.verdict}`);
const failed = Object.entries(cases).filter(([, c]) => c.error);
if (failed.length > 0) {
  console.error(`\n${failed.length} case(s) failed: ${failed.map(([id]) => id).join(', ')}`);
  process.exitCode = 1;
}

/** <name>.md and the charts in <name>/, next to <name>.json. */
async function writeReport(doc, dir) {
  const chartDir = join(dir, doc.name);
  rmSync(chartDir, { recursive: true, force: true });
  mkdirSync(chartDir, { recursive: true });
  const { markdown, charts } = await renderReport(doc, { chartDir: doc.name });
  for (const c of charts) writeFileSync(join(chartDir, `${c.name}.svg`), c.svg);
  const mdFile = join(dir, `${doc.name}.md`);
  writeFileSync(mdFile, markdown);
  console.log(`\nwrote ${relative(process.cwd(), join(dir, `${doc.name}.json`))}, ${relative(process.cwd(), mdFile)} and ${charts.length} charts in ${relative(process.cwd(), chartDir)}/`);
}

function runChild(argv) {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'], cwd: join(BENCH, '..') });
    child.on('exit', (code, signal) => resolvePromise(code ?? signal));
  });
}
