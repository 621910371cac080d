/**
 * Branching, short-circuits and sensors end to end through `kiln dags test` and the
 * scheduler, on thread and process, SQLite and PostgreSQL.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databasesUnderTest } from '../helpers/databases.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { exitOf, readRecords, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';

const FIXTURES = join(REPO, 'test/fixtures/dynamic');
const databases = await databasesUnderTest('dynamic');
afterAll(async () => Promise.all(databases.map((d) => d.cleanup())));

interface Report {
  runId: string;
  state: string;
  tasks: Array<{ taskId: string; state: string; tries: number; error: string | null }>;
}
const states = (r: Report) => Object.fromEntries(r.tasks.map((t) => [t.taskId, t.state]));

describe.each(databases.flatMap((db) => (['thread', 'process'] as const).map((isolation) => ({ db, isolation }))))('dynamic DAGs, $isolation on $db.name', ({ db, isolation }) => {
  const test = async (file: string, params: Record<string, unknown> = {}, extra: string[] = []) => {
    const cwd = scratchProject('kiln-dynamic-');
    const res = await runKiln(['dags', 'test', join(FIXTURES, file), '--executor', isolation, '--json', '--params', JSON.stringify(params), ...extra], { cwd, env: { KILN_DATABASE_URL: db.url(cwd), KILN_PARALLELISM: '4' }, timeoutMs: 60_000 });
    return { cwd, res, report: JSON.parse(res.stdout || '{}') as Report };
  };

  it('a branch follows the chosen path; joins follow their trigger rules; a nested branch; both short-circuit modes', async () => {
    const { res, report } = await test('branching.ts');
    expect(res.code, res.stderr).toBe(0);
    expect(states(report)).toEqual({
      pick: 'success', work: 'success', email: 'success', relax: 'skipped',
      join: 'success', strict_join: 'skipped',
      triage: 'success', page: 'success', file_ticket: 'skipped',
      gate_all: 'success', a1: 'skipped', a2: 'skipped',
      gate_direct: 'success', b1: 'skipped', b2: 'success',
      gate_open: 'success', c1: 'success',
    });
    const weekend = await test('branching.ts', { weekend: true, urgent: false });
    expect(weekend.res.code, weekend.res.stderr).toBe(0);
    expect(states(weekend.report)).toMatchObject({ relax: 'success', work: 'skipped', email: 'skipped', join: 'success', strict_join: 'skipped', triage: 'skipped', page: 'skipped', file_ticket: 'skipped' });
  });

  it('a branch that names a task not right below it fails once, without retry, saying so', async () => {
    const { res, report } = await test('bad_branch.ts');
    expect(res.code).toBe(1);
    const pick = report.tasks.find((t) => t.taskId === 'pick')!;
    expect(pick).toMatchObject({ state: 'failed', tries: 1 });
    expect(pick.error).toMatch(/BRANCH_INVALID: branch 'pick' returned 'far_away', which is not a direct downstream of it \(its direct downstream tasks: near\)/);
  });

  it('a reschedule sensor gives its slot back: it and another task both progress at parallelism 1; timeouts fail once or skip softly', async () => {
    const cwd = scratchProject('kiln-sensors-');
    const flag = join(cwd, 'flag');
    const pokes = join(cwd, 'pokes.jsonl');
    const res = await runKiln(['dags', 'test', join(FIXTURES, 'sensors.ts'), '--executor', isolation, '--json', '--params', JSON.stringify({ flag, pokes })], {
      cwd, env: { KILN_DATABASE_URL: db.url(cwd), KILN_PARALLELISM: '1' }, timeoutMs: 60_000,
    });
    expect(res.code, res.stderr).toBe(1); // `never` failed
    const report = JSON.parse(res.stdout) as Report;
    const byId = new Map(report.tasks.map((t) => [t.taskId, t]));
    expect(states(report)).toEqual({ for_file: 'success', make_file: 'success', use_file: 'success', never: 'failed', after_never: 'upstream_failed', never_soft: 'skipped', after_soft: 'skipped' });
    expect(existsSync(flag)).toBe(true);
    // Several pokes, one try: a reschedule is not a retry.
    const poked = readRecords<{ tryNumber: number }>(pokes);
    expect(poked.length).toBeGreaterThan(1);
    expect(new Set(poked.map((p) => p.tryNumber))).toEqual(new Set([1]));
    expect(byId.get('for_file')?.tries).toBe(1);
    // Its timeout counts from the first poke across reschedules: failed once, retries unused.
    expect(byId.get('never')).toMatchObject({ tries: 1 });
    expect(byId.get('never')?.error).toMatch(/SENSOR_TIMEOUT: sensor 'never' timed out/);
    const show = await runKiln(['runs', 'show', 'sensors', report.runId, '--json'], { cwd, env: { KILN_DATABASE_URL: db.url(cwd) } });
    const firstPoke = (JSON.parse(show.stdout) as { tasks: Array<{ taskId: string; firstPokeAt: number | null }> }).tasks.find((t) => t.taskId === 'for_file')?.firstPokeAt;
    expect(firstPoke).toBeGreaterThan(0);
  });
});

describe.each(databases)('decisions and reschedules survive the process, on $name', (db) => {
  it('a task a branch skipped stays skipped when cleared alone, and is decided again when cleared with its branch', async () => {
    const cwd = scratchProject('kiln-branch-clear-');
    const env = { KILN_DATABASE_URL: db.url(cwd), KILN_DAGS_FOLDER: FIXTURES, KILN_SCHEDULER_INTERVAL: '100ms' };
    const first = await runKiln(['dags', 'test', 'branching', '--json'], { cwd, env });
    expect(first.code, first.stderr).toBe(0);
    const { runId } = JSON.parse(first.stdout) as Report;
    expect((await runKiln(['tasks', 'clear', 'branching', runId, 'relax'], { cwd, env })).code).toBe(0);
    let scheduler = startScheduler(['--exit-when-idle'], { cwd, env });
    expect((await exitOf(scheduler)).code, scheduler.output()).toBe(0);
    await withStore(db.url(cwd), async (store) => expect((await store.getTaskInstance({ dagId: 'branching', runId, taskId: 'relax' }))?.state).toBe('skipped'));
    // Cleared with its branch (and everything below it), it is decided again.
    expect((await runKiln(['tasks', 'clear', 'branching', runId, 'pick', '--downstream'], { cwd, env })).code).toBe(0);
    scheduler = startScheduler(['--exit-when-idle'], { cwd, env });
    expect((await exitOf(scheduler)).code, scheduler.output()).toBe(0);
    await withStore(db.url(cwd), async (store) => {
      const tis = Object.fromEntries((await store.getTaskInstances('branching', runId)).map((t) => [t.taskId, [t.state, t.tryNumber]]));
      // The branch ran again (try 2) and chose as before: relax never ran (try 0).
      expect(tis).toMatchObject({ pick: ['success', 2], work: ['success', 2], relax: ['skipped', 0] });
    });
  });

  it('a scheduler restart resumes a reschedule sensor at its rescheduleAt', async () => {
    const cwd = scratchProject('kiln-sensor-restart-');
    const flag = join(cwd, 'flag');
    const pokes = join(cwd, 'pokes.jsonl');
    const env = { KILN_DATABASE_URL: db.url(cwd), KILN_DAGS_FOLDER: FIXTURES, KILN_SCHEDULER_INTERVAL: '100ms' };
    const trigger = await runKiln(['dags', 'trigger', 'sensors', '--params', JSON.stringify({ flag, pokes, makeAfterMs: 600_000 })], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);
    const first = startScheduler(['--executor', 'thread', '--takeover-after', '1s'], { cwd, env });
    const waiting = await until(async () => withStore(db.url(cwd), async (store) => {
      const [run] = await store.listRuns({ dagId: 'sensors' });
      const ti = run && (await store.getTaskInstance({ dagId: 'sensors', runId: run.runId, taskId: 'for_file' }));
      return ti?.state === 'up_for_reschedule' ? ti : null;
    }), 'the sensor to be up for reschedule', 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const pokedBefore = readRecords(pokes).length;
    const { writeFileSync } = await import('node:fs');
    writeFileSync(flag, 'here');
    const second = startScheduler(['--executor', 'thread', '--takeover-after', '1s'], { cwd, env });
    try {
      await until(async () => withStore(db.url(cwd), async (store) => (await store.getTaskInstance({ dagId: 'sensors', runId: waiting.runId, taskId: 'for_file' }))?.state === 'success'), 'the sensor to find the file', 30_000);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
    const after = readRecords<{ at: number; tryNumber: number }>(pokes).slice(pokedBefore);
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(after[0]!.at).toBeGreaterThanOrEqual(waiting.nextRetryAt!);
    expect(after[0]!.tryNumber).toBe(waiting.tryNumber + 1);
  });
});
