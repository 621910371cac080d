import { describe, expect, it } from 'vitest';
import { dag } from '../../src/dag/authoring.js';
import { serializeDag } from '../../src/dag/serialize.js';
import { BullmqExecutor } from '../../src/remote/bullmq-executor.js';
import { freeSlotsFor, hostCapacity } from '../../src/remote/host-capacity.js';
import { HostLiveness } from '../../src/remote/host-liveness.js';
import { cancelled, endOfHostCancel } from '../../src/remote/outcomes.js';
import { bullPriority } from '../../src/remote/priority.js';
import { bullmqSettings } from '../../src/remote/settings.js';
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

describe('remote: backpressure (freeSlots bounded by the live hosts)', () => {
  const host = (id: string, slots: number, running: number, queues = ['default']): HostRecord => ({ id, name: id, hostname: 'x', pid: 1, queues, slots, running, seq: 1, startedAt: 0, at: 0 });

  it("sums the hosts' slots once each, less what others run there; our own tries are the in-flight count", () => {
    expect(hostCapacity([], new Map())).toBeNull();
    // A host serving two queues counts once; b runs 1 try of another scheduler's.
    expect(hostCapacity([host('a', 4, 0, ['default', 'gpu']), host('b', 2, 1)], new Map())).toBe(5);
    // Two of a's running tries are ours: not others' load (the in-flight count holds them).
    expect(hostCapacity([host('a', 4, 3), host('b', 2, 0)], new Map([['a', 2]]))).toBe(5);
    // A beat older than our 'started' events never goes below zero, a full host offers nothing.
    expect(hostCapacity([host('a', 2, 1)], new Map([['a', 2]]))).toBe(2);
    expect(hostCapacity([host('a', 2, 2)], new Map())).toBe(0);
    expect(freeSlotsFor(16, 3, 5)).toBe(2);
    expect(freeSlotsFor(4, 1, 10)).toBe(3);
    expect(freeSlotsFor(4, 1, null)).toBe(3); // no live host: queue up to parallelism
  });

  it('freeSlots() follows the hosts a tick read, and wakes the engine when room appears', () => {
    let wakes = 0;
    const executor = new BullmqExecutor(bullmqSettings({
      parallelism: 8, defaultIsolation: 'thread', logDir: '/tmp/kiln-unit-logs', taskApi: { xcom: async () => undefined },
      onEvent: () => {}, onCapacity: () => wakes++,
    }));
    expect(executor.freeSlots()).toBe(8); // no host read yet: as without backpressure
    executor.seeHosts([host('a', 2, 0), host('b', 1, 0, ['gpu'])]);
    expect(executor.freeSlots()).toBe(3);
    expect(wakes).toBe(0);
    executor.seeHosts([host('a', 2, 2), host('b', 1, 1, ['gpu'])]); // others filled them
    expect(executor.freeSlots()).toBe(0);
    executor.seeHosts([host('a', 2, 1), host('b', 1, 1, ['gpu'])]);
    expect(executor.freeSlots()).toBe(1);
    expect(wakes).toBe(1);
    executor.seeHosts([host('a', 2, 1), host('b', 1, 1, ['gpu']), host('c', 32, 0)]);
    expect(executor.freeSlots()).toBe(8); // never past parallelism
    expect(wakes).toBe(2);
    executor.seeHosts([]); // every host gone: work queues up to parallelism, no wake-up needed
    expect(executor.freeSlots()).toBe(8);
    expect(wakes).toBe(2);
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

describe('remote: priorities', () => {
  it('a higher priorityWeight is a lower (earlier) BullMQ priority, always within 1..2,097,151 and never 0 (no priority)', () => {
    expect(bullPriority(10)).toBeLessThan(bullPriority(1));
    expect(bullPriority(1)).toBeLessThan(bullPriority(-5));
    expect(bullPriority(1e9)).toBe(1);
    expect(bullPriority(-1e9)).toBe(2_097_151);
    expect(bullPriority(0)).toBeGreaterThan(0);
  });
});

describe('remote: a try its host cancelled on its own', () => {
  it('ends as lost, retried if retries are left, not as a final cancel; other ends stay', () => {
    const cancel = { ...cancelled('d/r/t/1', "this host lost the job's lock in Redis"), durationMs: 12 };
    const end = endOfHostCancel(cancel, 'w1-abc', "this host lost the job's lock in Redis");
    expect(end).toMatchObject({ key: 'd/r/t/1', outcome: 'failed', noRetry: false, durationMs: 12 });
    expect(end.error).toMatchObject({ code: 'WORKER_HOST_LOST', message: "worker host w1-abc gave the try up: this host lost the job's lock in Redis" });
    const success = { ...cancel, outcome: 'success' as const, error: null, noRetry: false };
    expect(endOfHostCancel(success, 'w1-abc', 'x')).toBe(success);
    const failedOnItsOwn = { ...cancel, error: { name: 'Error', message: 'boom' }, noRetry: false };
    expect(endOfHostCancel(failedOnItsOwn, 'w1-abc', 'x')).toBe(failedOnItsOwn);
  });
});
