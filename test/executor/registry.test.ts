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

  it('names the module when it has no factory default export', async () => {
    const path = join(fixturesDir, 'not-an-executor.mjs');
    await expect(resolveExecutor(path)).rejects.toMatchObject({ code: 'EXECUTOR', message: expect.stringContaining(`${path} has no ExecutorFactory default export`) });
  });

  it('says what it looked for when the name is neither a built-in nor a module', async () => {
    await expect(resolveExecutor('celery')).rejects.toMatchObject({ code: 'EXECUTOR', message: expect.stringMatching(/'celery' is not a built-in \(thread, process, spawn, local\) and there is no module at \/.*celery/) });
  });
});
