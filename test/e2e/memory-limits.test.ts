/**
 * The endurance issue's defect, as a user meets it: a thread task filling its heap with
 * large strings used to abort the whole kiln process (SIGABRT, exit 134, the run lost),
 * because threads had no heap limit unless one was configured. Now the limits are derived
 * from the configuration by default; here from a small maxWorkerMemoryBytes, so the hogs
 * hit their limits in seconds instead of after gigabytes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';

interface Report {
  state: string;
  tasks: Array<{ taskId: string; state: string; error: string | null }>;
}

describe.each(['thread', 'process'] as const)('memory hogs under kiln dags test, %s isolation', (isolation) => {
  it('fails only the hogs, with the reason, and finishes the run', async () => {
    const cwd = scratchProject('kiln-memory-');
    writeFileSync(join(cwd, 'kiln.config.json'), JSON.stringify({ maxWorkerMemoryBytes: '96MiB', defaultIsolation: isolation }));
    const res = await runKiln(['dags', 'test', join(REPO, 'test/fixtures/memory/hogs.ts'), '--executor', 'local', '--json'], {
      cwd,
      env: { KILN_PARALLELISM: '4' },
      timeoutMs: 120_000,
    });
    expect(res.code, res.stderr).toBe(1); // the run failed, kiln did not crash (134)
    const report = JSON.parse(res.stdout) as Report;
    const byId = new Map(report.tasks.map((t) => [t.taskId, t]));
    expect(report.state).toBe('failed');
    expect(byId.get('before')?.state).toBe('success');
    expect(byId.get('beside')?.state).toBe('success');
    expect(byId.get('strings')?.state).toBe('failed');
    expect(byId.get('strings')?.error).toMatch(/out of memory|memory limit/);
    expect(byId.get('buffers')?.state).toBe('failed');
    expect(byId.get('buffers')?.error).toMatch(/^TASK_MEMORY_LIMIT: memory limit: .*maxTaskMemoryBytes 192 MiB/);
  });
});
