import { describe, expect, it } from 'vitest';
import { livenessActions } from '../../src/scheduler/liveness.js';
import { poolLimits } from '../../src/scheduler/pool-limits.js';
import type { TiRow } from '../../src/store/types.js';

const NOW = 1_000_000;

function ti(taskId: string, over: Partial<TiRow> = {}): TiRow {
  return {
    dagId: 'd', runId: 'r', taskId, mapIndex: -1, state: 'running', tryNumber: 1, maxTries: 2, pool: 'default_pool', poolSlots: 1, priorityWeight: 1,
    isolation: 'process', queuedAt: NOW - 100_000, startedAt: NOW - 90_000, endedAt: null, durationMs: null, pid: 1, exitCode: null, signal: null,
    error: null, peakRssBytes: null, cpuMs: null, lastHeartbeatAt: NOW - 1_000, queuedBy: 'me', nextRetryAt: null, ...over,
  };
}

const base = { now: NOW, zombieTimeoutMs: 60_000, queuedTimeoutMs: 600_000, isMine: () => true };

describe('zombie and queued-timeout decisions', () => {
  it('a running task instance whose last heartbeat is older than the timeout is a zombie, with the reason', () => {
    const actions = livenessActions({ ...base, running: [ti('old', { lastHeartbeatAt: NOW - 90_000 }), ti('fresh')], queued: [] });
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({ kind: 'zombie', ti: { taskId: 'old' }, reason: 'zombie: no heartbeat for 90s' });
  });

  it('without any heartbeat, the start (or queue) time counts', () => {
    const actions = livenessActions({ ...base, running: [ti('never', { lastHeartbeatAt: null, startedAt: NOW - 61_000 }), ti('young', { lastHeartbeatAt: null, startedAt: NOW - 5_000 })], queued: [] });
    expect(actions.map((a) => [a.ti.taskId, a.reason])).toEqual([['never', 'zombie: no heartbeat for 61s']]);
  });

  it('exactly at the timeout is not yet a zombie', () => {
    expect(livenessActions({ ...base, running: [ti('edge', { lastHeartbeatAt: NOW - 60_000 })], queued: [] })).toEqual([]);
  });

  it('only the task instances of runs this scheduler drives', () => {
    const running = [ti('a', { runId: 'mine', lastHeartbeatAt: 0 }), ti('b', { runId: 'theirs', lastHeartbeatAt: 0 })];
    const actions = livenessActions({ ...base, running, queued: [], isMine: (t) => t.runId === 'mine' });
    expect(actions.map((a) => a.ti.runId)).toEqual(['mine']);
  });

  it('a task instance queued past the queued timeout is queued again; younger ones are left', () => {
    const queued = [ti('stuck', { state: 'queued', queuedAt: NOW - 700_000, startedAt: null }), ti('new', { state: 'queued', queuedAt: NOW - 10_000, startedAt: null })];
    const actions = livenessActions({ ...base, running: [], queued });
    expect(actions).toEqual([{ kind: 'requeue', ti: queued[0], reason: 'queued for 700s without starting: queued again' }]);
  });

  it('rows that changed state since they were read are ignored', () => {
    expect(livenessActions({ ...base, running: [ti('done', { state: 'success', lastHeartbeatAt: 0 })], queued: [ti('ran', { state: 'running', queuedAt: 0 })] })).toEqual([]);
  });
});

describe('pool limits for one scheduler', () => {
  const pools = [
    { name: 'default_pool', slots: 128, description: null },
    { name: 'db', slots: 3, description: 'the database' },
  ];

  it('subtracts what other schedulers use, not what this one uses (the engine counts its own)', () => {
    const active = [
      ti('a', { pool: 'db', queuedBy: 'other' }),
      ti('b', { pool: 'db', queuedBy: 'other', state: 'queued', poolSlots: 1 }),
      ti('c', { pool: 'db', queuedBy: 'me', poolSlots: 1 }),
      ti('d', { pool: 'default_pool', queuedBy: 'other', poolSlots: 4 }),
    ];
    const limits = poolLimits(pools, active, 'me');
    expect(limits.get('db')).toBe(1);
    expect(limits.get('default_pool')).toBe(124);
  });

  it('never goes below zero, and a pool tasks name but the table lacks has no slots', () => {
    const limits = poolLimits(pools, [ti('a', { pool: 'db', queuedBy: 'other', poolSlots: 5 })], 'me', ['db', 'gpu']);
    expect(limits.get('db')).toBe(0);
    expect(limits.get('gpu')).toBe(0);
  });
});
