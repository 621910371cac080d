/**
 * noRetryOn and retryOn end to end: the check runs in the worker against the real Error
 * (its class chain included) and a rejected error ends the task failed on its first try.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';

interface Report {
  tasks: Array<{ taskId: string; state: string; tries: number; error: string | null }>;
}

describe.each(['thread', 'process', 'spawn'] as const)('retry policy, %s', (executor) => {
  it('retries only the errors the task says are worth it', async () => {
    const cwd = scratchProject('kiln-retry-policy-');
    const res = await runKiln(['dags', 'test', join(REPO, 'test/fixtures/dags/retry_policy.ts'), '--executor', executor, '--json'], { cwd, env: { KILN_PARALLELISM: '4' } });
    expect(res.code, res.stderr).toBe(1);
    const tasks = new Map((JSON.parse(res.stdout) as Report).tasks.map((t) => [t.taskId, t]));
    const tries = Object.fromEntries([...tasks].map(([id, t]) => [id, [t.state, t.tries]]));
    expect(tries).toEqual({
      validation: ['failed', 1],
      subclass: ['failed', 1],
      from_defaults: ['failed', 1],
      transient: ['failed', 3],
      permanent: ['failed', 1],
      broken_check: ['failed', 3],
    });
    expect(tasks.get('validation')?.error).toMatch(/row 3: amount is not a number \(not retried: noRetryOn lists ValidationError\)/);
    expect(tasks.get('subclass')?.error).toMatch(/not retried: noRetryOn lists ValidationError/);
    expect(tasks.get('permanent')?.error).toMatch(/HTTP 404 \(not retried: retryOn returned false\)/);
    expect(tasks.get('transient')?.error).not.toMatch(/not retried/);
    const logs = await runKiln(['tasks', 'logs', 'retry_policy', JSON.parse(res.stdout).runId, 'broken_check', '--try', '1'], { cwd });
    expect(logs.stdout).toMatch(/retryOn threw \(the check itself is broken\); retrying as usual/);
  });
});
