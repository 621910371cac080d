/**
 * Dynamic task mapping end to end through `kiln dags test`, `kiln tasks clear` and the
 * scheduler, on thread and process, SQLite and PostgreSQL; and two schedulers on PostgreSQL
 * expanding each run's map once.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databasesUnderTest } from '../helpers/databases.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { exitOf, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';

const FIXTURES = join(REPO, 'test/fixtures/mapping');
const databases = await databasesUnderTest('mapping');
afterAll(async () => Promise.all(databases.map((d) => d.cleanup())));

interface Report {
  runId: string;
  state: string;
  tasks: Array<{ taskId: string; mapIndex: number; state: string; tries: number; error: string | null }>;
}
const key = (t: { taskId: string; mapIndex: number }) => (t.mapIndex >= 0 ? `${t.taskId}[${t.mapIndex}]` : t.taskId);
const states = (r: Report) => Object.fromEntries(r.tasks.map((t) => [key(t), t.state]));

describe.each(databases.flatMap((db) => (['thread', 'process'] as const).map((isolation) => ({ db, isolation }))))('task mapping, $isolation on $db.name', ({ db, isolation }) => {
  const test = async (file: string, params: Record<string, unknown> = {}) => {
    const cwd = scratchProject('kiln-mapping-');
    const res = await runKiln(['dags', 'test', join(FIXTURES, file), '--executor', isolation, '--json', '--params', JSON.stringify(params)], { cwd, env: { KILN_DATABASE_URL: db.url(cwd), KILN_PARALLELISM: '4' }, timeoutMs: 60_000 });
    return { cwd, res, report: JSON.parse(res.stdout || '{}') as Report };
  };

  it('maps over an XCom and literals, reduces in map-index order, crosses 3 x 2, skips an empty map, retries only the failing instance, keeps a limit', async () => {
    const cwd0 = scratchProject('kiln-mapping-spans-');
    const spans = join(cwd0, 'spans.jsonl');
    const { cwd, res, report } = await test('mapping.ts', { failIndex: 1, spans });
    expect(res.code, res.stderr).toBe(0);
    expect(states(report)).toEqual({
      list: 'success', 'square[0]': 'success', 'square[1]': 'success', 'square[2]': 'success', total: 'success',
      'shout[0]': 'success', 'shout[1]': 'success',
      ...Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`cross[${i}]`, 'success'])),
      none: 'success', each_none: 'skipped', after_none: 'skipped',
      ...Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`limited[${i}]`, 'success'])),
    });
    // Only the failing instance was tried again.
    const tries = Object.fromEntries(report.tasks.map((t) => [key(t), t.tries]));
    expect([tries['square[0]'], tries['square[1]'], tries['square[2]']]).toEqual([1, 2, 1]);
    await withStore(db.url(cwd), async (store) => {
      const at = { dagId: 'mapping', runId: report.runId };
      expect(await store.getXcom({ ...at, taskId: 'total' })).toEqual({ squares: [9, 1, 4], sum: 14 });
      expect((await store.getTaskXcoms(at.dagId, at.runId, 'shout')).map((x) => x.value)).toEqual(['a!', 'b!']);
      expect((await store.getTaskXcoms(at.dagId, at.runId, 'cross')).map((x) => x.value)).toEqual([
        { n: 3, c: 'x' }, { n: 3, c: 'y' }, { n: 1, c: 'x' }, { n: 1, c: 'y' }, { n: 2, c: 'x' }, { n: 2, c: 'y' },
      ]);
    });
    // maxActiveTisPerRun 2: never three instances running at once.
    const s = readFileSync(spans, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { start: number; end: number });
    expect(s).toHaveLength(6);
    // At each start, how many spans are open (a sweep: pairwise overlaps would over-count).
    const atOnce = Math.max(...s.map((a) => s.filter((b) => b.start <= a.start && a.start < b.end).length));
    expect(atOnce).toBeLessThanOrEqual(2);
    expect(atOnce).toBe(2); // and the limit is used, not one at a time
    // Each instance has its own log: <task>/<mapIndex>/<try>.log.
    const logs = await runKiln(['tasks', 'logs', 'mapping', report.runId, 'square', '--map-index', '1', '--try', '1'], { cwd, env: { KILN_DATABASE_URL: db.url(cwd) } });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/instance 1 fails its first try/);
  });

  it('an upstream returning a string or too many items fails its own try, naming the type or the length', async () => {
    const { res, report } = await test('bad_map.ts');
    expect(res.code).toBe(1);
    const byId = Object.fromEntries(report.tasks.map((t) => [key(t), t]));
    expect(byId.text).toMatchObject({ state: 'failed', tries: 1 });
    expect(byId.text!.error).toMatch(/MAP_SOURCE: .*must be an array or an object; got a string \("abc"\)/);
    expect(byId.big!.error).toMatch(/MAP_SOURCE: .*has 11 items, more than maxMapLength \(10\)/);
    expect(byId.by_char).toMatchObject({ state: 'upstream_failed', mapIndex: -1 });
    expect(byId.each_big).toMatchObject({ state: 'upstream_failed', mapIndex: -1 });
  });
});

describe.each(databases)('task mapping across processes, on $name', (db) => {
  it('a cleared upstream that now returns fewer items: the surplus instance is removed and the run succeeds', async () => {
    const cwd = scratchProject('kiln-mapping-shrink-');
    const itemsFile = join(cwd, 'items.json');
    const markers = join(cwd, 'markers');
    mkdirSync(markers);
    writeFileSync(itemsFile, JSON.stringify(['a', 'b', 'c']));
    const env = { KILN_DATABASE_URL: db.url(cwd), KILN_DAGS_FOLDER: FIXTURES, KILN_SCHEDULER_INTERVAL: '100ms' };
    const first = await runKiln(['dags', 'test', 'shrink', '--json', '--params', JSON.stringify({ itemsFile, markers })], { cwd, env });
    expect(first.code, first.stderr).toBe(0);
    const { runId } = JSON.parse(first.stdout) as Report;
    writeFileSync(itemsFile, JSON.stringify(['a', 'b']));
    const clear = await runKiln(['tasks', 'clear', 'shrink', runId, 'list', '--downstream'], { cwd, env });
    expect(clear.code, clear.stderr).toBe(0);
    const scheduler = startScheduler(['--exit-when-idle'], { cwd, env });
    expect((await exitOf(scheduler)).code, scheduler.output()).toBe(0);
    await withStore(db.url(cwd), async (store) => {
      expect((await store.getRun('shrink', runId))?.state).toBe('success');
      const tis = (await store.getTaskInstances('shrink', runId)).map((t) => `${key(t)}:${t.state}:${t.tryNumber}`);
      expect(tis).toEqual(['each[0]:success:2', 'each[1]:success:2', 'each[2]:removed:1', 'list:success:2', 'report:success:2']);
      expect(await store.getXcom({ dagId: 'shrink', runId, taskId: 'report' })).toEqual(['a-done', 'b-done']);
    });
    const show = await runKiln(['runs', 'show', 'shrink', runId], { cwd, env });
    expect(show.stdout).toMatch(/each \[0\.\.2\]\s+2 success, 1 removed/);
  });
});

const pg = databases.find((d) => d.name === 'postgres');
describe.skipIf(!pg)('two schedulers on PostgreSQL', () => {
  it('expand every run\'s map exactly once: no instance starts twice', async () => {
    const cwd = scratchProject('kiln-mapping-ha-');
    const itemsFile = join(cwd, 'items.json');
    const markers = join(cwd, 'markers');
    mkdirSync(markers);
    const N = 40;
    writeFileSync(itemsFile, JSON.stringify(Array.from({ length: N }, (_, i) => `i${i}`)));
    const env = { KILN_DATABASE_URL: pg!.url(cwd), KILN_DAGS_FOLDER: FIXTURES, KILN_SCHEDULER_INTERVAL: '100ms', KILN_PARALLELISM: '8' };
    const runs = 6;
    for (let r = 0; r < runs; r++) {
      const t = await runKiln(['dags', 'trigger', 'shrink', '--run-id', `ha-${r}`, '--params', JSON.stringify({ itemsFile, markers, sleepMs: 20 })], { cwd, env });
      expect(t.code, t.stderr).toBe(0);
    }
    const a = startScheduler(['--executor', 'thread'], { cwd, env });
    const b = startScheduler(['--executor', 'thread'], { cwd, env });
    try {
      await until(async () => withStore(pg!.url(cwd), async (store) => (await store.listRuns({ dagId: 'shrink' })).every((r) => r.state === 'success') || null), 'every run to succeed', 90_000);
    } finally {
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      await Promise.all([a.exited, b.exited]);
    }
    await withStore(pg!.url(cwd), async (store) => {
      for (let r = 0; r < runs; r++) {
        const each = (await store.getTaskInstances('shrink', `ha-${r}`)).filter((t) => t.taskId === 'each');
        expect(each.map((t) => t.mapIndex)).toEqual(Array.from({ length: N }, (_, i) => i));
        expect(each.every((t) => t.state === 'success' && t.tryNumber === 1)).toBe(true);
      }
    });
    // Exactly one start per instance and try (markers are created exclusively).
    expect(readdirSync(markers)).toHaveLength(runs * N);
  });
});
