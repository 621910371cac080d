import { describe, expect, it } from 'vitest';
import { downstreamMap, validateGraph } from '../../src/dag/graph.js';
import { DagValidationError } from '../../src/errors.js';

/** A graph from `task: [upstreams]`, in insertion order. */
const graph = (g: Record<string, string[]>) => new Map(Object.entries(g).map(([id, upstream]) => [id, { upstream }]));

function invalid(g: Record<string, string[]>, dagId = 'etl'): DagValidationError {
  try {
    validateGraph(dagId, graph(g));
  } catch (err) {
    expect(err).toBeInstanceOf(DagValidationError);
    expect((err as DagValidationError).code).toBe('DAG_INVALID');
    expect((err as DagValidationError).dagId).toBe(dagId);
    return err as DagValidationError;
  }
  throw new Error('expected a DagValidationError, nothing was thrown');
}

describe('validateGraph', () => {
  it.each<[string, Record<string, string[]>]>([
    ['an empty DAG', {}],
    ['a single task', { a: [] }],
    ['a chain', { a: [], b: ['a'], c: ['b'] }],
    ['a diamond', { a: [], b: ['a'], c: ['a'], d: ['b', 'c'] }],
    ['upstreams declared after their downstream', { d: ['b', 'c'], c: ['a'], b: ['a'], a: [] }],
    ['disconnected components', { a: [], b: ['a'], x: [], y: ['x'] }],
    ['a task reachable along many paths', { a: [], b: ['a'], c: ['a', 'b'], d: ['a', 'b', 'c'], e: ['a', 'b', 'c', 'd'] }],
  ])('accepts %s', (_name, g) => {
    expect(() => validateGraph('etl', graph(g))).not.toThrow();
  });

  it('rejects an unknown upstream, naming the DAG, the task and the option', () => {
    const err = invalid({ a: [], b: ['a', 'ghost'] });
    expect(err.message).toBe("DAG 'etl', task 'b': option 'upstream' names unknown task 'ghost'");
    expect(err).toMatchObject({ taskId: 'b', option: 'upstream' });
  });

  it('rejects a task that is its own upstream', () => {
    const err = invalid({ a: ['a'] });
    expect(err.message).toBe("DAG 'etl': task 'a' lists itself as upstream (cycle: a -> a)");
    expect(err).toMatchObject({ taskId: 'a', option: 'upstream' });
  });

  it("names a two-task cycle as the path 'a -> b -> a'", () => {
    expect(invalid({ a: ['b'], b: ['a'] }).message).toBe("DAG 'etl': cycle a -> b -> a");
  });

  it('names a longer cycle in the direction the data flows (upstream -> downstream)', () => {
    // edges a -> b -> c -> a
    const err = invalid({ a: ['c'], b: ['a'], c: ['b'] });
    expect(err.message).toBe("DAG 'etl': cycle a -> b -> c -> a");
    expect(err.option).toBe('upstream');
  });

  it('names only the cycle, not the tasks that lead into it', () => {
    // start -> x -> y -> z -> x, then z -> end; DFS starts at 'end'
    const err = invalid({ end: ['z'], start: [], x: ['start', 'z'], y: ['x'], z: ['y'] });
    const path = /cycle (.*)$/.exec(err.message)![1]!.split(' -> ');
    expect(path[0]).toBe(path[path.length - 1]);
    expect(new Set(path)).toEqual(new Set(['x', 'y', 'z']));
    expect(path).toHaveLength(4);
    // every consecutive pair is a real edge: the second lists the first as upstream
    const g = graph({ end: ['z'], start: [], x: ['start', 'z'], y: ['x'], z: ['y'] });
    for (let i = 1; i < path.length; i++) expect(g.get(path[i]!)!.upstream).toContain(path[i - 1]);
  });

  it('finds a cycle in a component visited after an acyclic one', () => {
    expect(invalid({ a: [], b: ['a'], p: ['q'], q: ['p'] }).message).toBe("DAG 'etl': cycle p -> q -> p");
  });

  it('handles a long chain without recursion limits', () => {
    const g: Record<string, string[]> = { t0: [] };
    for (let i = 1; i < 20_000; i++) g[`t${i}`] = [`t${i - 1}`];
    expect(() => validateGraph('etl', graph(g))).not.toThrow();
    g.t0 = ['t19999'];
    expect(invalid(g).message).toMatch(/^DAG 'etl': cycle t0 -> t1 -> .* -> t19999 -> t0$/);
  });
});

describe('downstreamMap', () => {
  it('inverts upstream edges, listing every task', () => {
    const tasks = [
      { taskId: 'a', upstream: [] },
      { taskId: 'b', upstream: ['a'] },
      { taskId: 'c', upstream: ['a'] },
      { taskId: 'd', upstream: ['b', 'c'] },
    ];
    expect(Object.fromEntries(downstreamMap(tasks))).toEqual({ a: ['b', 'c'], b: ['d'], c: ['d'], d: [] });
  });

  it('accepts any iterable, e.g. the values of a DAG task map', () => {
    const m = new Map([['a', { taskId: 'a', upstream: [] as string[] }], ['b', { taskId: 'b', upstream: ['a'] }]]);
    expect(downstreamMap(m.values()).get('a')).toEqual(['b']);
  });
});
