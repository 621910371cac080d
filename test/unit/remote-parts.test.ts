import { describe, expect, it } from 'vitest';
import { dag } from '../../src/dag/authoring.js';
import { serializeDag } from '../../src/dag/serialize.js';
import { HostLiveness } from '../../src/remote/host-liveness.js';
import { SlotGate } from '../../src/remote/slot-gate.js';
import { decode, jobIdOf, keyOfJobId, type HostRecord } from '../../src/remote/wire.js';

const record = (seq: number): HostRecord => ({ id: 'h', name: 'h', hostname: 'x', pid: 1, queues: ['default'], slots: 1, running: 1, seq, startedAt: 0, at: 0 });

describe('remote: job ids', () => {
  it('derive from the try key, one per try, without the characters BullMQ rejects, and back', () => {
    const key = 'etl/manual__2026-01-01T00:00:00.000Z/load/2';
    const id = jobIdOf(key);
    expect(id).not.toMatch(/:/);
    expect(id).not.toMatch(/^\d+$/);
    expect(keyOfJobId(id)).toBe(key);
    expect(jobIdOf(key)).toBe(id);
    expect(jobIdOf('etl/manual__2026-01-01T00:00:00.000Z/load/3')).not.toBe(id);
    expect(keyOfJobId(jobIdOf('callback:17'))).toBe('callback:17');
  });

  it('drops stream entries that are not kiln messages', () => {
    expect(decode('{"type":"cancel","jobId":"t-a","reason":"r"}')).toEqual({ type: 'cancel', jobId: 't-a', reason: 'r' });
    expect(decode('not json')).toBeNull();
    expect(decode('{"no":"type"}')).toBeNull();
  });
});

describe('remote: HostLiveness', () => {
  it('loses a host whose beat counter stood still past the timeout, by the poller\'s clock', () => {
    const l = new HostLiveness(3_000, 10_000);
    expect(l.observe(new Map([['h', record(1)]]), 0)).toEqual([]);
    expect(l.observe(new Map([['h', record(2)]]), 1_000)).toEqual([]);
    expect(l.observe(new Map([['h', record(2)]]), 3_000)).toEqual([]);
    expect(l.observe(new Map([['h', record(2)]]), 4_001)).toEqual(['h']);
    expect(l.silentFor('h', 4_001)).toBe(3_001);
  });

  it('counts an expired record as silence, and a moving counter as life', () => {
    const l = new HostLiveness(3_000, 10_000);
    l.observe(new Map([['h', record(1)]]), 0);
    expect(l.observe(new Map([['h', null]]), 2_000)).toEqual([]);
    expect(l.observe(new Map([['h', record(5)]]), 3_500)).toEqual([]);
    expect(l.observe(new Map([['h', null]]), 6_501)).toEqual(['h']);
  });

  it('does not count silence it could not observe (a gap between polls: Redis or the scheduler away)', () => {
    const l = new HostLiveness(3_000, 5_000);
    l.observe(new Map([['h', record(1)]]), 0);
    expect(l.observe(new Map([['h', record(1)]]), 20_000)).toEqual([]);
    expect(l.observe(new Map([['h', record(1)]]), 23_001)).toEqual(['h']);
  });
});

describe('remote: SlotGate', () => {
  it('lets `slots` holders in, queues the rest in order, and turns waiters away when cancelled or closed', async () => {
    const gate = new SlotGate<string>(1);
    expect(await gate.acquire('a')).toBe(true);
    const order: string[] = [];
    const b = gate.acquire('b').then((ok) => order.push(`b:${ok}`));
    const c = gate.acquire('c').then((ok) => order.push(`c:${ok}`));
    const d = gate.acquire('d').then((ok) => order.push(`d:${ok}`));
    gate.cancel('c');
    await c;
    gate.release();
    await b;
    expect(gate.used).toBe(1);
    gate.close();
    await d;
    expect(order).toEqual(['c:false', 'b:true', 'd:false']);
    gate.release();
    expect(gate.used).toBe(0);
    expect(await gate.acquire('e')).toBe(false);
  });
});

describe('the queue task option', () => {
  it('defaults to default, follows DAG defaults, is serialized, and rejects names BullMQ or Redis keys cannot hold', () => {
    const d = dag({ id: 'q', defaults: { queue: 'cpu' } }, (b) => {
      b.task('a', () => 1);
      b.task('b', () => 1, { queue: 'gpu' });
    });
    expect(d.tasks.get('a')!.queue).toBe('cpu');
    expect(d.tasks.get('b')!.queue).toBe('gpu');
    expect(serializeDag(d).tasks.map((t) => t.queue)).toEqual(['cpu', 'gpu']);
    expect(dag({ id: 'q2' }, (b) => void b.task('a', () => 1)).tasks.get('a')!.queue).toBe('default');
    for (const bad of ['', 'a:b', 'has space', 42]) {
      expect(() => dag({ id: 'q3' }, (b) => void b.task('a', () => 1, { queue: bad as string }))).toThrow(/queue/);
    }
  });
});
