import { describe, expect, it } from 'vitest';
import { dag } from '../../src/dag/authoring.js';
import { crossProduct, mapItems, mapSourceTasks, unmappableReason } from '../../src/dag/mapping.js';
import { serializeDag } from '../../src/dag/serialize.js';
import { DagValidationError } from '../../src/errors.js';

describe('d.map()', () => {
  it('maps over an upstream handle: the upstream joins the map\'s upstreams and the spec is serialized', () => {
    const d = dag({ id: 'm' }, (b) => {
      const list = b.task('list', () => [1, 2]);
      const other = b.task('other', () => 1);
      b.map('each', (ctx) => ctx.item, { over: list, upstream: [other], retries: 2, maxActiveTisPerRun: 3 });
    });
    const each = serializeDag(d).tasks.find((t) => t.taskId === 'each')!;
    expect(each.map).toEqual({ over: { task: 'list' } });
    expect(each.upstream.sort()).toEqual(['list', 'other']);
    expect(each.retries).toBe(2);
    expect(each.maxActiveTisPerRun).toBe(3);
    expect(serializeDag(d).maxMapLength).toBe(10_000);
  });

  it('maps over literal arrays and a cross product of a handle and a literal', () => {
    const d = dag({ id: 'm', maxMapLength: 50 }, (b) => {
      const files = b.task('files', () => ['a', 'b']);
      b.map('lit', () => 1, { over: [1, 2, 3] });
      b.map('prod', () => 1, { over: { file: files, mode: ['x', 'y', 'z'] } });
    });
    const tasks = serializeDag(d).tasks;
    expect(tasks.find((t) => t.taskId === 'lit')!.map).toEqual({ over: { items: [1, 2, 3] } });
    expect(tasks.find((t) => t.taskId === 'prod')!.map).toEqual({ over: { product: { file: { task: 'files' }, mode: { items: ['x', 'y', 'z'] } } } });
    expect(tasks.find((t) => t.taskId === 'prod')!.upstream).toEqual(['files']);
    expect(serializeDag(d).maxMapLength).toBe(50);
  });

  it('rejects what cannot be mapped over, naming the task and the option', () => {
    const bad = (over: unknown, extra: Record<string, unknown> = {}) => () =>
      dag({ id: 'm', ...extra }, (b) => {
        b.task('up', () => 1);
        b.map('each', () => 1, { over } as never);
      });
    expect(bad(undefined)).toThrow(/task 'each': option 'over' is required/);
    expect(bad('up')).toThrow(/option 'over' must be a task handle or an array, got the string 'up'/);
    expect(bad(42)).toThrow(/option 'over' must be a task handle, an array, or an object of those; got a number \(42\)/);
    expect(bad({})).toThrow(/option 'over' is an empty object/);
    expect(bad({ a: 5 })).toThrow(/option 'over.a' must be a task handle/);
    expect(bad([1, 2, 3], { maxMapLength: 2 })).toThrow(/option 'over' has 3 items, more than maxMapLength \(2\)/);
    expect(bad({ taskId: 'nope' })).toThrow(DagValidationError);
    expect(() => dag({ id: 'm', maxMapLength: 0 }, () => {})).toThrow(/option 'maxMapLength' must be an integer >= 1/);
    expect(() => dag({ id: 'm' }, (b) => b.task('t', () => 1, { maxActiveTisPerDag: 0 }))).toThrow(/option 'maxActiveTisPerDag' must be an integer >= 1, got 0/);
  });
});

describe('map items', () => {
  it('an array maps per element, an object per [key, value] entry, a product with the last name fastest', () => {
    const results: Record<string, unknown> = { arr: [1, 2], obj: { a: 1, b: 2 } };
    const resultOf = (id: string) => (id in results ? { value: results[id] } : undefined);
    expect(mapItems({ over: { task: 'arr' } }, resultOf)).toEqual([1, 2]);
    expect(mapItems({ over: { task: 'obj' } }, resultOf)).toEqual([['a', 1], ['b', 2]]);
    expect(mapItems({ over: { product: { x: { task: 'arr' }, y: { items: ['p', 'q', 'r'] } } } }, resultOf)).toEqual([
      { x: 1, y: 'p' }, { x: 1, y: 'q' }, { x: 1, y: 'r' }, { x: 2, y: 'p' }, { x: 2, y: 'q' }, { x: 2, y: 'r' },
    ]);
    expect(mapItems({ over: { task: 'missing' } }, resultOf)).toBeNull();
    expect(crossProduct(['a', 'b'], [[1], []])).toEqual([]);
    expect(mapSourceTasks({ over: { product: { x: { task: 'a' }, y: { task: 'a' }, z: { items: [] } } } })).toEqual(['a']);
  });

  it('names the type or the length of a result that cannot be mapped', () => {
    expect(unmappableReason([1], 10)).toBeNull();
    expect(unmappableReason({ a: 1 }, 10)).toBeNull();
    expect(unmappableReason('abc', 10)).toMatch(/must be an array or an object; got a string \("abc"\)/);
    expect(unmappableReason(undefined, 10)).toMatch(/got undefined \(the task returned nothing\)/);
    expect(unmappableReason(null, 10)).toMatch(/got null/);
    expect(unmappableReason([1, 2, 3], 2)).toMatch(/has 3 items, more than maxMapLength \(2\)/);
  });
});
