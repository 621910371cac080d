/**
 * The end of an executor: stop() drains, then kills; and when kiln itself is SIGKILLed, no
 * runner or task process outlives it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHarness, fixturesDir, isGone } from './harness.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-shutdown-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10 }));

describe.each(['thread', 'process', 'spawn'] as const)('stop(): %s isolation', (isolation) => {
  it('lets running tries finish within drainMs, kills the rest, and reports every one once', async () => {
    const h = createHarness({ isolation, logDir: join(dir, 'logs'), executor: { parallelism: 2, killGraceMs: 100 } });
    await h.executor.start();
    const quick = h.submit('heartbeats'); // ~150 ms
    const endless = h.submit('loops');
    await h.next((e) => e.type === 'task-heartbeat' && e.key === quick.key);
    await h.next((e) => e.type === 'started' && e.key === endless.key);
    const stopped = h.executor.stop({ drainMs: 1000 });
    expect(h.executor.freeSlots()).toBe(0);
    expect((await quick.finished).outcome).toBe('success');
    const killed = await endless.finished;
    expect(killed).toMatchObject({ outcome: 'failed', error: { code: 'TASK_CANCELLED' } });
    await stopped;
    const finished = h.events.filter((e) => e.type === 'finished');
    expect(finished).toHaveLength(2);
  });
});

describe.each(['thread', 'process', 'spawn'] as const)('a SIGKILLed kiln: %s isolation', (isolation) => {
  it('leaves no runner and no grandchild behind', async () => {
    const host = spawn(process.execPath, [join(fixturesDir, 'kiln-host.mjs'), isolation, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: host.stdout! }).once('line', resolve);
      host.once('exit', (code) => reject(new Error(`kiln-host exited with ${code} before reporting`)));
    });
    const pids = JSON.parse(line) as { host: number; runners: number[]; grandchild: number };
    // A thread's runner is kiln itself; the grandchild is then kiln's own child.
    const children = [...new Set(pids.runners.filter((pid) => pid > 0 && pid !== pids.host)), pids.grandchild];
    expect(children.every((pid) => !isGone(pid))).toBe(true);
    host.kill('SIGKILL');
    // The runners notice within their watchdog's 1 s poll (sooner through 'disconnect').
    await vi.waitFor(() => expect(children.filter((pid) => !isGone(pid))).toEqual([]), { timeout: 8000, interval: 50 });
  });
});
