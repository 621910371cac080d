#!/usr/bin/env node
/**
 * Experiment behind a recommendation in the report (not part of `npm run bench`): the SQLite
 * schema indexes task_instance twice on state, `task_instance_state_idx (state)` and
 * `task_instance_state_heartbeat_idx (state, last_heartbeat_at)`; the second serves every
 * query the first does (leftmost prefix), and each state change rewrites both. Two warm
 * thread contexts, one with `task_instance_state_idx` dropped, 40 runs x 40 noop tasks,
 * interleaved.
 *
 *   node bench/experiments/sqlite-state-index.mjs [thread|process] [rounds]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { openBenchContext } from '../lib/kiln.mjs';
import { median } from '../lib/stats.mjs';

const mode = process.argv[2] ?? 'thread';
const rounds = Number(process.argv[3] ?? 9);
const tmp = mkdtempSync(join(tmpdir(), 'kiln-state-index-'));
try {
  const wide = writeDag(tmp, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' });
  const variants = {};
  for (const v of ['as-is', 'one-state-index']) {
    const b = await openBenchContext(join(tmp, v), { executor: mode });
    if (v === 'one-state-index') {
      const db = new Database(join(tmp, v, 'kiln.db'));
      db.exec('DROP INDEX task_instance_state_idx');
      db.close();
    }
    const found = await b.loadDag(wide);
    await b.runConcurrent(found, 40);
    variants[v] = { run: async () => { const r = await b.runConcurrent(found, 40); return r.tis / (r.wallMs / 1000); }, b };
  }
  const out = await interleave(rounds, variants);
  console.log(`${mode}, 40 runs x 40 noop tasks, ${rounds} interleaved rounds (TI/s median, min-max)`);
  for (const [v, r] of Object.entries(out)) console.log(`${v.padEnd(16)} ${Math.round(median(r))} (${Math.round(Math.min(...r))}-${Math.round(Math.max(...r))})`);
  for (const v of Object.values(variants)) await v.b.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
