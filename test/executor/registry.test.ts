import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveExecutor } from '../../dist/src/executor/registry.js';
import { fixturesDir } from './harness.js';

describe('resolveExecutor', () => {
  it.each([
    ['thread', 'thread'],
    ['process', 'process'],
    ['spawn', 'spawn'],
    ['local', 'process'],
  ] as const)('maps the built-in %s to the local executor, default isolation %s', async (name, isolation) => {
    const { factory, defaultIsolation } = await resolveExecutor(name);
    expect(defaultIsolation).toBe(isolation);
    expect(typeof factory).toBe('function');
  });

  it('registers bullmq (remote worker hosts) like a plugin, with the configuration default isolation; its options are checked at once', async () => {
    const { factory, defaultIsolation } = await resolveExecutor('bullmq');
    expect(defaultIsolation).toBeUndefined();
    const base = { parallelism: 4, defaultIsolation: 'process' as const, taskApi: { xcom: async () => undefined }, onEvent: () => {}, logDir: '/tmp/kiln-registry-logs' };
    const executor = factory({ ...base, extra: { redisUrl: 'redis://127.0.0.1:1', zombieTimeoutMs: 5_000 } });
    expect(executor.name).toBe('bullmq');
    expect(executor.cancelsForeignTries).toBe(true);
    expect(executor.freeSlots()).toBe(4);
    expect(() => factory({ ...base, extra: { redisUrl: 'http://nope' } })).toThrow(/'extra.redisUrl'/);
    expect(() => factory({ ...base, extra: { zombieTimeoutMs: -1 } })).toThrow(/'extra.zombieTimeoutMs'/);
  });

  it('names the module when it has no factory default export', async () => {
    const path = join(fixturesDir, 'not-an-executor.mjs');
    await expect(resolveExecutor(path)).rejects.toMatchObject({ code: 'EXECUTOR', message: expect.stringContaining(`${path} has no ExecutorFactory default export`) });
  });

  it('says what it looked for when the name is neither a built-in nor a module', async () => {
    await expect(resolveExecutor('celery')).rejects.toMatchObject({ code: 'EXECUTOR', message: expect.stringMatching(/'celery' is not a built-in \(thread, process, spawn, local, bullmq\) and there is no module at \/.*celery/) });
  });
});
