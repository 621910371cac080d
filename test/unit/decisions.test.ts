import { describe, expect, it } from 'vitest';
import { dag } from '../../src/dag/authoring.js';
import { descendants, skippedBy } from '../../src/dag/decisions.js';
import { downstreamMap } from '../../src/dag/graph.js';
import { serializeDag } from '../../src/dag/serialize.js';
import { sensorWaitMs } from '../../src/dag/special-tasks.js';

const spec = serializeDag(dag({ id: 'd' }, (d) => {
  const b = d.branch('b', () => 'x');
  const x = d.task('x', () => 1, { upstream: [b] });
  const y = d.task('y', () => 1, { upstream: [b] });
  d.task('join', () => 1, { upstream: [b, x, y], triggerRule: 'none_failed_min_one_success' });
  d.task('below_y', () => 1, { upstream: [y] });
  const all = d.shortCircuit('sc_all', () => 0);
  d.chain(all, d.task('s1', () => 1), d.task('s2', () => 1));
  const direct = d.shortCircuit('sc_direct', () => 0, { ignoreDownstreamTriggerRules: false });
  d.chain(direct, d.task('t1', () => 1), d.task('t2', () => 1));
}));
const down = downstreamMap(spec.tasks);
const task = (id: string) => spec.tasks.find((t) => t.taskId === id)!;

describe('skippedBy', () => {
  it('a branch skips the direct downstreams it did not choose, except those below a chosen one', () => {
    expect(skippedBy(task('b'), ['x'], down)).toEqual(new Set(['y']));
    expect(skippedBy(task('b'), ['y'], down)).toEqual(new Set(['x']));
    expect(skippedBy(task('b'), [], down)).toEqual(new Set(['x', 'y', 'join']));
    expect(skippedBy(task('b'), null, down)).toEqual(new Set(['x', 'y', 'join']));
  });
  it('a falsy short-circuit skips all below it, or only its direct downstreams', () => {
    expect(skippedBy(task('sc_all'), 0, down)).toEqual(new Set(['s1', 's2']));
    expect(skippedBy(task('sc_direct'), '', down)).toEqual(new Set(['t1']));
    expect(skippedBy(task('sc_all'), 'go', down)).toEqual(new Set());
    expect(skippedBy(task('x'), null, down)).toEqual(new Set());
  });
  it('descendants are transitive and exclude the start', () => {
    expect(descendants(['y'], down)).toEqual(new Set(['join', 'below_y']));
  });
});

describe('special task options', () => {
  it('serializes the kind and the sensor settings; the sensor timeout bounds each try', () => {
    const s = serializeDag(dag({ id: 's' }, (d) => {
      d.sensor('wait', () => true, { mode: 'reschedule', pokeInterval: '5s', timeout: '1h', softFail: true, exponentialBackoff: true, maxWait: '1m' });
    })).tasks[0]!;
    expect(s).toMatchObject({ kind: 'sensor', timeoutMs: 3_600_000, sensor: { pokeIntervalMs: 5000, timeoutMs: 3_600_000, mode: 'reschedule', softFail: true, exponentialBackoff: true, maxWaitMs: 60_000 } });
    expect(sensorWaitMs(s.sensor!, 1)).toBe(5000);
    expect(sensorWaitMs(s.sensor!, 3)).toBe(20_000);
    expect(sensorWaitMs(s.sensor!, 10)).toBe(60_000);
  });
  it('names the task and the option when one is wrong or belongs to another kind', () => {
    expect(() => dag({ id: 'e' }, (d) => void d.sensor('w', () => 1, { mode: 'sometimes' as 'poke' }))).toThrow(/DAG 'e', task 'w': option 'mode' must be 'poke' or 'reschedule'/);
    expect(() => dag({ id: 'e' }, (d) => void d.sensor('w', () => 1, { pokeInterval: 'soon' }))).toThrow(/option 'pokeInterval' must be milliseconds/);
    expect(() => dag({ id: 'e' }, (d) => void d.task('t', () => 1, { pokeInterval: '1s' } as object))).toThrow(/option 'pokeInterval' is not an option of d.task\(\)/);
    expect(() => dag({ id: 'e' }, (d) => void d.shortCircuit('t', () => 1, { ignoreDownstreamTriggerRules: 'yes' as unknown as boolean }))).toThrow(/option 'ignoreDownstreamTriggerRules' must be a boolean/);
  });
});
