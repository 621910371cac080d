import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDagTest } from '../../dist/src/app/dags-test.js';
import { loadConfig } from '../../dist/src/config/load.js';
import { createStore } from '../../dist/src/store/index.js';
import { REPO, scratchProject } from '../helpers/cli.js';
import { databasesUnderTest } from '../helpers/databases.js';

const databases = await databasesUnderTest('owner');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

describe.each(databases)('a dags test run on $name', (db) => {
  it('is held by a live owner: a scheduler on the same database cannot take it over', async () => {
    const cwd = scratchProject();
    const releaseFile = join(cwd, 'release');
    const config = await loadConfig({ cwd, env: {}, flags: { databaseUrl: db.url(cwd), executor: 'thread', heartbeatIntervalMs: 50 } });
    let running!: () => void;
    const taskRunning = new Promise<void>((resolve) => (running = resolve));
    const test = runDagTest(config, join(REPO, 'test/fixtures/dags/wait_for_file.mjs'), {
      params: { releaseFile },
      onTaskChange: (ti) => ti.state === 'running' && running(),
    });
    await taskRunning;
    const other = await createStore(db.url(cwd));
    try {
      // Well past several owner heartbeats: a silent owner would look dead by now.
      await new Promise((r) => setTimeout(r, 300));
      const claimed = await other.claimRuns('another-scheduler', Date.now() - 200, 10);
      expect(claimed.map((r) => r.dagId)).not.toContain('wait_for_file');
    } finally {
      writeFileSync(releaseFile, '');
      await other.close();
    }
    expect((await test).state).toBe('success');
  });
});
