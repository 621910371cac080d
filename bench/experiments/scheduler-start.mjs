#!/usr/bin/env node
/**
 * How soon a cold `kiln scheduler` starts work: 40 runs of the 12-task example DAG are queued
 * (`kiln dags trigger --count 40`, a fresh SQLite home each time), then `kiln scheduler
 * --executor thread --exit-when-idle` is started; from the database afterwards, the first
 * task instance's start and the last one's end, counted from the scheduler's launch. Two
 * built checkouts, alternated pair by pair (A B A B ...), medians. (The other example DAGs
 * in that folder are parsed and scheduled too, alike on both sides; only example_dag's task
 * instances are read.)
 *
 *   node bench/experiments/scheduler-start.mjs --before /tmp/kiln-before --after . [--pairs 6]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../lib/stats.mjs';

const { values: args } = parseArgs({ options: { before: { type: 'string' }, after: { type: 'string', default: '.' }, pairs: { type: 'string', default: '6' } } });
const sides = { before: args.before, after: args.after };
const pairs = Number(args.pairs);
if (!sides.before) {
  console.error('usage: node bench/experiments/scheduler-start.mjs --before <built checkout> [--after .] [--pairs 6]');
  process.exit(2);
}
const Database = createRequire(import.meta.url)('better-sqlite3');

function once(checkout) {
  const root = resolve(checkout);
  const home = mkdtempSync(join(tmpdir(), 'kiln-scheduler-start-'));
  try {
    const env = { ...process.env, KILN_HOME: home, KILN_DATABASE_URL: `sqlite:${join(home, 'kiln.db')}`, KILN_DAGS_FOLDER: join(root, 'examples/dags') };
    for (const key of Object.keys(env)) if (key.startsWith('KILN_') && !['KILN_HOME', 'KILN_DATABASE_URL', 'KILN_DAGS_FOLDER'].includes(key)) delete env[key];
    const cli = join(root, 'dist/src/cli/main.js');
    const trigger = spawnSync(process.execPath, [cli, 'dags', 'trigger', 'example_dag', '--count', '40'], { cwd: root, env, encoding: 'utf8' });
    if (trigger.status !== 0) throw new Error(`trigger failed: ${trigger.stderr}`);
    const t0 = Date.now();
    const run = spawnSync(process.execPath, [cli, 'scheduler', '--executor', 'thread', '--exit-when-idle'], { cwd: root, env, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`scheduler failed: ${run.stderr}`);
    const db = new Database(join(home, 'kiln.db'), { readonly: true });
    const r = db.prepare("select min(started_at) first, max(ended_at) last, count(*) n, sum(state = 'success') ok from task_instance where dag_id = 'example_dag'").get();
    db.close();
    if (r.n !== 480 || r.ok !== 480) throw new Error(`expected 480 successful task instances, found ${r.ok} of ${r.n}`);
    return { firstStartMs: r.first - t0, lastEndMs: r.last - t0 };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

const out = { before: [], after: [] };
for (let i = 0; i < pairs; i++) {
  for (const side of i % 2 === 0 ? ['before', 'after'] : ['after', 'before']) out[side].push(once(sides[side]));
}
for (const side of ['before', 'after']) {
  const first = out[side].map((r) => r.firstStartMs);
  const last = out[side].map((r) => r.lastEndMs);
  console.log(`${side.padEnd(6)} first task started ${median(first)} ms (${Math.min(...first)}-${Math.max(...first)}), last ended ${median(last)} ms (${Math.min(...last)}-${Math.max(...last)}) after the scheduler's launch`);
}
