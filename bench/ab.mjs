#!/usr/bin/env node
/**
 * Before/after of a kiln change, measured side by side: runs the same bench cases against
 * two built checkouts, alternating A B A B ... (each run its own process), and prints the
 * median of each headline figure per side with the after/before ratio.
 *
 *   git worktree add /tmp/kiln-before <commit> && (cd /tmp/kiln-before && ln -s $PWD/node_modules . ; npm run build)
 *   node bench/ab.mjs --before /tmp/kiln-before --after . --rounds 3 [--cases executor-modes,dags-test] [--out bench/results/ab-<name>.json]
 *
 * Each side runs its own bench/run.mjs (`--quick --only <cases>`, executor-modes and dags-test
 * unless --cases names others, e.g. `--cases postgres`), so a side is measured exactly as its
 * own commit would measure itself. Only the figures of the cases run are compared.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const sides = { before: resolve(opt('before', '')), after: resolve(opt('after', '.')) };
if (!opt('before')) {
  console.error('usage: node bench/ab.mjs --before <built kiln checkout> [--after .] [--rounds 3] [--out file.json]');
  process.exit(2);
}
const rounds = Number(opt('rounds', '3'));
const cases = opt('cases', 'executor-modes,dags-test');

/** The figures compared, read from a run's JSON (of the case `case`). Higher is better unless `lower`. */
const ALL_FIGURES = [
  { name: '40x40 noop, thread, TI/s', get: (r) => scenario(r, 'noop-40x40').modes.thread.tiPerSec.median },
  { name: '40x40 noop, process, TI/s', get: (r) => scenario(r, 'noop-40x40').modes.process.tiPerSec.median },
  { name: '12-task DAG x40 runs, thread, TI/s', get: (r) => scenario(r, 'noop-12x40').modes.thread.tiPerSec.median },
  { name: '12-task DAG x40 runs, process, TI/s', get: (r) => scenario(r, 'noop-12x40').modes.process.tiPerSec.median },
  { name: '12-task DAG one run, thread, wall ms', lower: true, get: (r) => scenario(r, 'noop-12x1').modes.thread.wallMs.median },
  { name: 'dags test chain, thread, ms/task', lower: true, get: (r) => r.cases['dags-test'].result.byExecutor.thread.warmChainMsPerTask.median },
  { name: 'dags test chain, process, ms/task', lower: true, get: (r) => r.cases['dags-test'].result.byExecutor.process.warmChainMsPerTask.median },
  { case: 'postgres', name: '40x40 noop on PostgreSQL, thread, TI/s', get: (r) => r.cases.postgres.result.e2e.postgres.tiPerSec.median },
  { case: 'postgres', name: '40x40 noop, PostgreSQL / SQLite in the same run', get: (r) => r.cases.postgres.result.e2e.ratio },
  { case: 'postgres', name: '40x40 noop on PostgreSQL, round trips per TI', lower: true, get: (r) => r.cases.postgres.result.e2e.postgres.roundTripsPerTi },
  { case: 'postgres', name: '80x40 on PostgreSQL, one scheduler, TI/s', get: (r) => r.cases.postgres.result.schedulers.one.tiPerSec.median },
  { case: 'postgres', name: '80x40 on PostgreSQL, two schedulers / one', get: (r) => r.cases.postgres.result.schedulers.ratio },
  { case: 'remote', name: 'remote 40x40, thread, TI/s', get: (r) => r.cases.remote.result.byIsolation.thread.remote.tiPerSec.median },
  { case: 'remote', name: 'remote / local, thread, same run', get: (r) => r.cases.remote.result.byIsolation.thread.ratio },
  { case: 'remote', name: 'remote, thread, p50 added latency ms', lower: true, get: (r) => r.cases.remote.result.byIsolation.thread.addedLatencyMs.p50 },
  { case: 'remote', name: 'remote, thread, CPU ms per TI (all processes)', lower: true, get: (r) => r.cases.remote.result.byIsolation.thread.remote.cpuMsPerTi.total },
  { case: 'remote', name: 'remote / local, process, same run', get: (r) => r.cases.remote.result.byIsolation.process.ratio },
];
const caseOf = (f) => f.case ?? (f.name.startsWith('dags test') ? 'dags-test' : 'executor-modes');
const FIGURES = ALL_FIGURES.filter((f) => cases.split(',').includes(caseOf(f)));
const scenario = (r, id) => r.cases['executor-modes'].result.scenarios.find((s) => s.id === id);

const samples = { before: [], after: [] };
for (let round = 1; round <= rounds; round++) {
  for (const side of round % 2 === 1 ? ['before', 'after'] : ['after', 'before']) {
    const out = mkdtempSync(join(tmpdir(), `kiln-ab-${side}-`));
    process.stderr.write(`round ${round}/${rounds}: ${side} (${sides[side]}), load ${loadavg()[0].toFixed(2)}\n`);
    execFileSync(process.execPath, ['bench/run.mjs', '--quick', '--only', cases, '--no-profile', '--out', out], { cwd: sides[side], stdio: ['ignore', 'ignore', 'inherit'] });
    const file = readdirSync(out).find((f) => f.endsWith('.json'));
    samples[side].push(JSON.parse(readFileSync(join(out, file), 'utf8')));
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = FIGURES.map((f) => {
  const before = median(samples.before.map(f.get));
  const after = median(samples.after.map(f.get));
  const gain = f.lower ? before / after : after / before;
  return { figure: f.name, before, after, betterBy: gain };
});
const machine = { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverageEnd: loadavg() };
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}; ${rounds} rounds, A B B A ...`);
console.log('| figure | before | after | after is better by |\n|---|---|---|---|');
for (const r of rows) console.log(`| ${r.figure} | ${r.before.toFixed(2)} | ${r.after.toFixed(2)} | ${r.betterBy.toFixed(2)}x |`);
const outFile = opt('out');
if (outFile) writeFileSync(outFile, JSON.stringify({ kind: 'kiln-ab', sides, rounds, cases, machine, rows }, null, 2) + '\n');
