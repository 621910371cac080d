import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';

const BAD = join(REPO, 'test/fixtures/bad-dags');

/** Each bad file, and a fragment of the import error that must name what is wrong. */
const EXPECTED: Record<string, RegExp> = {
  'cycle.ts': /cycle (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/,
  'duplicate_task.ts': /duplicate task id 'same'/,
  'unknown_upstream.ts': /task 'a'.*upstream.*unknown task 'ghost'/,
  'unknown_trigger_rule.ts': /task 'b'.*triggerRule.*'most_success'/,
  'bad_duration.ts': /task 'slow'.*'timeout'.*'5 parsecs'/,
  'not_a_dag.ts': /not a DAG/,
  'throws_at_import.mjs': /failed at import: cannot reach the config server/,
  'syntax_error.ts': /syntax error at line 3/,
  'bad_schedule.ts': /DAG 'bad_schedule': schedule 'every tuesday' is not a cron expression/,
};

describe('bad DAG files never take kiln down', () => {
  it('dags list --json reports every bad file under importErrors and still lists the good DAGs', async () => {
    const cwd = scratchProject();
    const res = await runKiln(['dags', 'list', '--json', '--dags-folder', BAD], { cwd });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const doc = JSON.parse(res.stdout) as { dags: Array<{ dagId: string; tasks: number }>; importErrors: Array<{ file: string; error: string }> };
    expect(doc.dags.map((d) => d.dagId).sort()).toEqual(['good', 'good_js']);
    for (const [file, pattern] of Object.entries(EXPECTED)) {
      const entry = doc.importErrors.find((e) => e.file === join(BAD, file));
      expect(entry, `import error for ${file}`).toBeDefined();
      expect(entry!.error).toMatch(pattern);
      expect(entry!.error).toContain(file);
    }
    expect(doc.importErrors).toHaveLength(Object.keys(EXPECTED).length);
  });

  it.each(Object.entries(EXPECTED))('dags test %s exits 2 with the error and no stack trace', async (file, pattern) => {
    const cwd = scratchProject();
    const res = await runKiln(['dags', 'test', join(BAD, file), '--executor', 'thread'], { cwd });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(pattern);
    expect(res.stderr).not.toMatch(/^\s+at /m);
  });

  it('the good DAGs next to the bad ones still run', async () => {
    const cwd = scratchProject();
    for (const id of ['good', 'good_js']) {
      const res = await runKiln(['dags', 'test', id, '--dags-folder', BAD, '--executor', 'thread', '--json'], { cwd });
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout).state).toBe('success');
    }
  });

  it('bad usage exits 2', async () => {
    const cwd = scratchProject();
    expect((await runKiln(['dags', 'test'], { cwd })).code).toBe(2);
    expect((await runKiln(['dags', 'test', 'no_such_dag', '--dags-folder', BAD], { cwd })).code).toBe(2);
    const badParams = await runKiln(['dags', 'test', join(BAD, 'good.ts'), '--params', '[1]'], { cwd });
    expect(badParams.code).toBe(2);
    expect(badParams.stderr).toMatch(/--params must be a JSON object/);
    const badEnv = await runKiln(['dags', 'test', join(BAD, 'good.ts')], { cwd, env: { KILN_PARALLELISM: 'many' } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/KILN_PARALLELISM must be an integer >= 1, got "many"/);
  });
});
