import { describe, expect, it } from 'vitest';
import { dag, isDag, type DagBuilder } from '../../src/dag/authoring.js';
import { parseDurationMs } from '../../src/dag/duration.js';
import { DagValidationError, KilnError } from '../../src/errors.js';
import type { DagOptions, TaskOptions } from '../../src/dag/types.js';

const noop = (): void => {};

/** Runs `fn`, expects a DagValidationError, and returns it. */
function invalid(fn: () => unknown): DagValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DagValidationError);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as DagValidationError).code).toBe('DAG_INVALID');
    return err as DagValidationError;
  }
  throw new Error('expected a DagValidationError, nothing was thrown');
}

const oneTask = (options: TaskOptions, dagOptions: Partial<DagOptions> = {}) =>
  dag({ id: 'etl', ...dagOptions }, (d) => {
    d.task('extract', noop, options);
  });

describe('dag()', () => {
  it('returns a frozen DAG with resolved task options and base defaults', () => {
    const d = dag({ id: 'etl', schedule: '@daily', tags: ['x'] }, (b) => {
      const a = b.task('extract', noop);
      b.task('load', noop, { upstream: [a], retries: 2, retryDelay: '30s', timeout: '5m', isolation: 'process' });
    });
    expect(isDag(d)).toBe(true);
    expect(isDag({})).toBe(false);
    expect(isDag(null)).toBe(false);
    expect(Object.isFrozen(d)).toBe(true);
    expect(d.dagId).toBe('etl');
    expect(d.options.schedule).toBe('@daily');
    expect([...d.tasks.keys()]).toEqual(['extract', 'load']);
    expect(d.tasks.get('extract')).toMatchObject({
      taskId: 'extract',
      upstream: [],
      triggerRule: 'all_success',
      retries: 0,
      retryDelayMs: 300_000,
      retryExponentialBackoff: false,
      maxRetryDelayMs: null,
      timeoutMs: null,
      heartbeatTimeoutMs: null,
      isolation: null,
      pool: 'default_pool',
      poolSlots: 1,
      priorityWeight: 1,
      env: [],
    });
    expect(d.tasks.get('load')).toMatchObject({ upstream: ['extract'], retries: 2, retryDelayMs: 30_000, timeoutMs: 300_000, isolation: 'process' });
    expect(d.tasks.get('load')!.fn).toBe(noop);
  });

  it('task() returns a frozen handle naming the task; upstreams may be handles or ids, deduplicated', () => {
    dag({ id: 'etl' }, (b) => {
      const a = b.task('a', noop);
      expect(a).toEqual({ taskId: 'a' });
      expect(Object.isFrozen(a)).toBe(true);
      b.task('b', noop);
      const c = b.task('c', noop, { upstream: [a, 'b', 'a'] });
      expect(c.taskId).toBe('c');
    });
    const d = dag({ id: 'etl' }, (b) => {
      const a = b.task('a', noop);
      b.task('c', noop, { upstream: [a, 'a'] });
    });
    expect(d.tasks.get('c')!.upstream).toEqual(['a']);
  });

  describe('DAG ids and options', () => {
    it.each([[''], ['has space'], ['-leading-dash'], ['a/b'], ['x'.repeat(251)], [42], [undefined]])('rejects the DAG id %j', (id) => {
      const err = invalid(() => dag({ id } as unknown as DagOptions, noop));
      expect(err.message).toContain("option 'id'");
      expect(err.option).toBe('id');
    });

    it('accepts ids with letters, digits, _ . -', () => {
      expect(dag({ id: 'My_dag.v2-final' }, noop).dagId).toBe('My_dag.v2-final');
      expect(dag({ id: 'x'.repeat(250) }, noop).dagId).toHaveLength(250);
    });

    it('rejects a non-object options argument', () => {
      expect(invalid(() => dag(null as unknown as DagOptions, noop)).message).toContain('options object');
      expect(invalid(() => dag('etl' as unknown as DagOptions, noop)).message).toContain('options object');
    });

    it('rejects an unknown DAG option key, naming the DAG and the option', () => {
      const err = invalid(() => dag({ id: 'etl', schedual: '@daily' } as unknown as DagOptions, noop));
      expect(err.message).toBe("DAG 'etl': option 'schedual' is not a DAG option");
      expect(err).toMatchObject({ dagId: 'etl', option: 'schedual' });
    });

    it.each<[string, Partial<Record<keyof DagOptions, unknown>>]>([
      ['schedule', { schedule: 5 }],
      ['startDate', { startDate: 'not a date' }],
      ['startDate', { startDate: new Date(Number.NaN) }],
      ['catchup', { catchup: 'yes' }],
      ['maxActiveRuns', { maxActiveRuns: 0 }],
      ['maxActiveRuns', { maxActiveRuns: 1.5 }],
      ['maxActiveTasks', { maxActiveTasks: -1 }],
      ['params', { params: [] }],
      ['params', { params: null }],
      ['tags', { tags: ['ok', 1] }],
      ['tags', { tags: 'etl' }],
      ['defaults', { defaults: null }],
    ])('rejects a bad %s', (option, bad) => {
      const err = invalid(() => dag({ id: 'etl', ...bad } as DagOptions, noop));
      expect(err.message).toContain(`DAG 'etl': option '${option}'`);
      expect(err).toMatchObject({ dagId: 'etl', option });
    });

    it('accepts valid DAG options', () => {
      const options: DagOptions = {
        id: 'etl', schedule: null, startDate: new Date('2024-01-01T00:00:00Z'), catchup: true, maxActiveRuns: 1, maxActiveTasks: 4,
        params: { n: 1 }, tags: ['a'], description: 'd', defaults: { retries: 1 },
      };
      expect(dag(options, noop).options).toEqual(options);
      expect(dag({ id: 'etl', startDate: '2024-01-01' }, noop).options.startDate).toBe('2024-01-01');
    });

    it('needs a builder function', () => {
      const err = invalid(() => dag({ id: 'etl' }, undefined as unknown as (d: DagBuilder) => void));
      expect(err.message).toContain("DAG 'etl'");
      expect(err.message).toContain('builder function');
    });

    it('lets errors thrown by the builder through unchanged', () => {
      const boom = new Error('boom');
      expect(() => dag({ id: 'etl' }, () => { throw boom; })).toThrow(boom);
    });
  });

  describe('task ids', () => {
    it.each([[''], ['bad id'], ['a/b'], [7]])('rejects the task id %j', (taskId) => {
      const err = invalid(() => dag({ id: 'etl' }, (d) => { d.task(taskId as string, noop); }));
      expect(err.message).toContain("DAG 'etl': task id must be");
      expect(err.dagId).toBe('etl');
    });

    it('rejects a duplicate task id', () => {
      const err = invalid(() => dag({ id: 'etl' }, (d) => { d.task('a', noop); d.task('a', noop); }));
      expect(err.message).toBe("DAG 'etl': duplicate task id 'a'");
      expect(err).toMatchObject({ dagId: 'etl', taskId: 'a' });
    });

    it('rejects a task without a function', () => {
      const err = invalid(() => dag({ id: 'etl' }, (d) => { d.task('a', 'nope' as unknown as () => void); }));
      expect(err.message).toBe("DAG 'etl', task 'a': option 'fn' must be a function, got 'nope'");
    });
  });

  describe('task options', () => {
    it('rejects an unknown task option key, naming the DAG, the task and the option', () => {
      const err = invalid(() => oneTask({ retires: 3 } as unknown as TaskOptions));
      expect(err.message).toBe("DAG 'etl', task 'extract': option 'retires' is not a task option");
      expect(err).toMatchObject({ dagId: 'etl', taskId: 'extract', option: 'retires' });
    });

    it('rejects non-object task options', () => {
      const err = invalid(() => oneTask(null as unknown as TaskOptions));
      expect(err).toMatchObject({ taskId: 'extract', option: 'options' });
    });

    it('rejects an unknown trigger rule, listing the valid ones', () => {
      const err = invalid(() => oneTask({ triggerRule: 'all_sucess' as unknown as TaskOptions['triggerRule'] }));
      expect(err.message).toContain("DAG 'etl', task 'extract': option 'triggerRule' must be one of all_success, all_failed,");
      expect(err.message).toContain("got 'all_sucess'");
      expect(err.option).toBe('triggerRule');
    });

    it.each([[-1], [1.5], ['3'], [Number.NaN]])('rejects retries = %j', (retries) => {
      const err = invalid(() => oneTask({ retries: retries as number }));
      expect(err.message).toContain("DAG 'etl', task 'extract': option 'retries' must be an integer >= 0");
      expect(err.option).toBe('retries');
    });

    it.each<[keyof TaskOptions, unknown]>([
      ['retryDelay', '5 parsecs'],
      ['retryDelay', -1],
      ['maxRetryDelay', '1 week'],
      ['timeout', '10'],
      ['heartbeatTimeout', {}],
    ])('rejects the duration %s = %j', (option, value) => {
      const err = invalid(() => oneTask({ [option]: value } as TaskOptions));
      expect(err.message).toContain(`DAG 'etl', task 'extract': option '${option}' must be milliseconds or a duration like '30s'`);
      expect(err).toMatchObject({ dagId: 'etl', taskId: 'extract', option });
    });

    it.each([['timeout'], ['heartbeatTimeout']] as const)('rejects a zero %s', (option) => {
      const err = invalid(() => oneTask({ [option]: 0 }));
      expect(err.message).toBe(`DAG 'etl', task 'extract': option '${option}' must be greater than 0`);
    });

    it('accepts a zero retryDelay', () => {
      expect(oneTask({ retryDelay: 0 }).tasks.get('extract')!.retryDelayMs).toBe(0);
    });

    it.each<[keyof TaskOptions, unknown]>([
      ['upstream', 'a'],
      ['upstream', [3]],
      ['retryExponentialBackoff', 'yes'],
      ['isolation', 'container'],
      ['pool', ''],
      ['poolSlots', 0],
      ['priorityWeight', 1.5],
      ['env', ['']],
      ['env', 'HOME'],
    ])('rejects %s = %j', (option, value) => {
      const err = invalid(() => oneTask({ [option]: value } as TaskOptions));
      expect(err.message).toContain(`DAG 'etl', task 'extract': option '${option}'`);
      expect(err.option).toBe(option);
    });

    it('resolves all durations', () => {
      const t = oneTask({ retryDelay: '1.5s', maxRetryDelay: '1h', timeout: 250, heartbeatTimeout: '2m', retryExponentialBackoff: true }).tasks.get('extract')!;
      expect(t).toMatchObject({ retryDelayMs: 1_500, maxRetryDelayMs: 3_600_000, timeoutMs: 250, heartbeatTimeoutMs: 120_000, retryExponentialBackoff: true });
    });
  });

  describe('defaults', () => {
    it('merges DAG defaults under task options', () => {
      const d = dag({ id: 'etl', defaults: { retries: 3, retryDelay: '10s', pool: 'db', triggerRule: 'all_done', env: ['HOME'] } }, (b) => {
        b.task('a', noop);
        b.task('b', noop, { retries: 0, pool: 'api', env: [] });
      });
      expect(d.tasks.get('a')).toMatchObject({ retries: 3, retryDelayMs: 10_000, pool: 'db', triggerRule: 'all_done', env: ['HOME'] });
      // a task's own option wins, even when it is falsy
      expect(d.tasks.get('b')).toMatchObject({ retries: 0, retryDelayMs: 10_000, pool: 'api', triggerRule: 'all_done', env: [] });
    });

    it('an option set to undefined falls back to the default', () => {
      const d = dag({ id: 'etl', defaults: { retries: 2 } }, (b) => { b.task('a', noop, { retries: undefined }); });
      expect(d.tasks.get('a')!.retries).toBe(2);
    });

    it('validates defaults, naming the option as defaults.<option>', () => {
      const err = invalid(() => dag({ id: 'etl', defaults: { retryDelay: '5 parsecs' } }, noop));
      expect(err.message).toContain("DAG 'etl': option 'defaults.retryDelay' must be milliseconds or a duration");
      expect(err.option).toBe('defaults.retryDelay');
      expect(invalid(() => dag({ id: 'etl', defaults: { retries: -2 } }, noop)).option).toBe('defaults.retries');
    });

    it('rejects upstream as a default', () => {
      const err = invalid(() => dag({ id: 'etl', defaults: { upstream: ['a'] } as unknown as DagOptions['defaults'] }, noop));
      expect(err.message).toBe("DAG 'etl': option 'defaults.upstream' cannot be a default");
    });

    it('rejects an unknown key in defaults', () => {
      const err = invalid(() => dag({ id: 'etl', defaults: { retires: 3 } as unknown as DagOptions['defaults'] }, noop));
      expect(err.message).toBe("DAG 'etl': option 'defaults.retires' is not a task option");
      expect(err).toMatchObject({ dagId: 'etl', option: 'defaults.retires' });
    });

    it('does not share the env array between tasks', () => {
      const d = dag({ id: 'etl', defaults: { env: ['HOME'] } }, (b) => { b.task('a', noop); b.task('b', noop); b.task('c', noop, { env: ['PATH'] }); });
      const [a, b] = [d.tasks.get('a')!, d.tasks.get('b')!];
      expect(a.env).toEqual(['HOME']);
      expect(a.env).not.toBe(b.env);
      const plain = dag({ id: 'plain' }, (x) => { x.task('a', noop); x.task('b', noop); });
      expect(plain.tasks.get('a')!.env).not.toBe(plain.tasks.get('b')!.env);
    });
  });

  describe('graph validation through dag()', () => {
    it('rejects an unknown upstream', () => {
      const err = invalid(() => dag({ id: 'etl' }, (b) => { b.task('load', noop, { upstream: ['extract'] }); }));
      expect(err.message).toBe("DAG 'etl', task 'load': option 'upstream' names unknown task 'extract'");
      expect(err).toMatchObject({ dagId: 'etl', taskId: 'load', option: 'upstream' });
    });

    it('accepts an upstream declared later by id', () => {
      const d = dag({ id: 'etl' }, (b) => { b.task('load', noop, { upstream: ['extract'] }); b.task('extract', noop); });
      expect(d.tasks.get('load')!.upstream).toEqual(['extract']);
    });

    it('rejects a cycle, naming it as a path', () => {
      const err = invalid(() => dag({ id: 'etl' }, (b) => {
        b.task('a', noop, { upstream: ['b'] });
        b.task('b', noop, { upstream: ['a'] });
      }));
      expect(err.message).toBe("DAG 'etl': cycle a -> b -> a");
    });

    it('rejects a task that is its own upstream', () => {
      const err = invalid(() => dag({ id: 'etl' }, (b) => { b.task('a', noop, { upstream: ['a'] }); }));
      expect(err.message).toBe("DAG 'etl': task 'a' lists itself as upstream (cycle: a -> a)");
    });
  });

  describe('chain()', () => {
    it('sets edges left to right, fanning out and in around lists', () => {
      const d = dag({ id: 'etl' }, (b) => {
        const [a, bb, c, , e] = ['a', 'b', 'c', 'd', 'e'].map((id) => b.task(id, noop));
        b.chain(a!, bb!, [c!, 'd'], e!);
      });
      const ups = Object.fromEntries([...d.tasks].map(([id, t]) => [id, t.upstream]));
      expect(ups).toEqual({ a: [], b: ['a'], c: ['b'], d: ['b'], e: ['c', 'd'] });
    });

    it('adds to upstreams declared in options without duplicating them', () => {
      const d = dag({ id: 'etl' }, (b) => {
        b.task('a', noop);
        b.task('x', noop);
        b.task('b', noop, { upstream: ['a', 'x'] });
        b.chain('a', 'b');
      });
      expect(d.tasks.get('b')!.upstream).toEqual(['a', 'x']);
    });

    it('chains list to list as a full bipartite set of edges', () => {
      const d = dag({ id: 'etl' }, (b) => {
        for (const id of ['a1', 'a2', 'b1', 'b2']) b.task(id, noop);
        b.chain(['a1', 'a2'], ['b1', 'b2']);
      });
      expect(d.tasks.get('b1')!.upstream).toEqual(['a1', 'a2']);
      expect(d.tasks.get('b2')!.upstream).toEqual(['a1', 'a2']);
    });

    it('with a single step sets no edges', () => {
      const d = dag({ id: 'etl' }, (b) => { b.task('a', noop); b.chain('a'); b.chain(); });
      expect(d.tasks.get('a')!.upstream).toEqual([]);
    });

    it('rejects an unknown downstream task', () => {
      const err = invalid(() => dag({ id: 'etl' }, (b) => { b.task('a', noop); b.chain('a', 'nope'); }));
      expect(err.message).toBe("DAG 'etl': chain() names unknown task 'nope'");
      expect(err).toMatchObject({ dagId: 'etl', taskId: 'nope' });
    });

    it('rejects an unknown upstream task, naming chain()', () => {
      const err = invalid(() => dag({ id: 'etl' }, (b) => { b.task('a', noop); b.chain('nope', 'a'); }));
      expect(err.message).toBe("DAG 'etl': chain() names unknown task 'nope'");
      expect(err).toMatchObject({ dagId: 'etl', taskId: 'nope' });
    });

    it('rejects something that is neither a handle nor an id', () => {
      const err = invalid(() => dag({ id: 'etl' }, (b) => { b.task('a', noop); b.chain('a', 3 as unknown as string); }));
      expect(err.message).toBe("DAG 'etl': chain() takes task handles or task ids, got 3");
    });

    it('can close a cycle, which validation then reports', () => {
      const err = invalid(() => dag({ id: 'etl' }, (b) => {
        b.task('a', noop);
        b.task('b', noop);
        b.task('c', noop);
        b.chain('a', 'b', 'c', 'a');
      }));
      expect(err.message).toMatch(/^DAG 'etl': cycle (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)$/);
    });
  });
});

describe('parseDurationMs', () => {
  it.each<[unknown, number]>([
    [0, 0],
    [250, 250],
    [1.5, 1.5],
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1_500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['0s', 0],
    [' 10 s ', 10_000],
  ])('parses %j as %d ms', (input, ms) => {
    expect(parseDurationMs(input)).toBe(ms);
  });

  it.each<[unknown]>([
    ['5 parsecs'],
    ['10'],
    [''],
    ['-5s'],
    ['5S'],
    ['1w'],
    ['1h30m'],
    ['.5s'],
    [-1],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [null],
    [undefined],
    [{}],
    [true],
  ])('rejects %j', (input) => {
    expect(parseDurationMs(input)).toBeUndefined();
  });
});
