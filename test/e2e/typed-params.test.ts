/**
 * paramsSchema as a user meets it: defaults from the schema, every violation named by its
 * path, exit 2, and no run left behind; a bad schema is an import error.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';

const FOLDER = join(REPO, 'test/fixtures/params');
const env = { KILN_DAGS_FOLDER: FOLDER, KILN_PARALLELISM: '2' };

describe('typed params', () => {
  it('fills defaults from the schema and the DAG, then runs', async () => {
    const cwd = scratchProject('kiln-params-');
    const res = await runKiln(['dags', 'test', 'typed', '--executor', 'thread', '--params', '{"day":"2026-11-01","tags":["a"]}', '--json'], { cwd, env });
    expect(res.code, res.stderr).toBe(0);
    const runId = (JSON.parse(res.stdout) as { runId: string }).runId;
    const show = await runKiln(['runs', 'show', 'typed', runId, '--json'], { cwd, env });
    const { run } = JSON.parse(show.stdout) as { run: { params: unknown } };
    expect(run.params).toEqual({ region: 'eu', limit: 10, day: '2026-11-01', tags: ['a'] });
  });

  it.each([
    ['dags', 'test', 'typed', '--executor', 'thread'],
    ['dags', 'trigger', 'typed'],
  ])('refuses bad params with the path of each violation and creates no run (%s %s)', async (...args) => {
    const cwd = scratchProject('kiln-params-');
    const res = await runKiln([...args, '--params', '{"day":"yesterday","limit":500,"region":"mars","tags":[1],"colour":"red"}'], { cwd, env });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("DAG 'typed': the run's params do not match its paramsSchema");
    expect(res.stderr).toContain('params.day: must match format "date"');
    expect(res.stderr).toContain('params.limit: must be <= 100');
    expect(res.stderr).toContain('params.region: must be one of ["eu","us"]');
    expect(res.stderr).toContain('params.tags[0]: must be string');
    expect(res.stderr).toContain('params.colour: is not a known parameter');
    const missing = await runKiln([...args, '--params', '{}'], { cwd, env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('params.day: is required');
    const runs = await runKiln(['runs', 'list', '--json'], { cwd, env });
    expect(JSON.parse(runs.stdout)).toEqual({ runs: [] });
  });

  it('reports an invalid schema, and a scheduled DAG whose own params break it, as import errors', async () => {
    const cwd = scratchProject('kiln-params-');
    const res = await runKiln(['dags', 'list', '--json'], { cwd, env });
    const { dags, importErrors } = JSON.parse(res.stdout) as { dags: Array<{ dagId: string }>; importErrors: Array<{ file: string; error: string }> };
    expect(dags.map((d) => d.dagId)).toEqual(['typed']);
    const errors = Object.fromEntries(importErrors.map((e) => [e.file.split('/').pop(), e.error]));
    expect(errors['bad_schema.ts']).toMatch(/option 'paramsSchema' is not a valid JSON Schema/);
    expect(errors['scheduled_unsatisfiable.ts']).toMatch(/option 'params' must satisfy 'paramsSchema' \(scheduled runs get no other params\):\n\s+params\.day: is required/);
  });
});
