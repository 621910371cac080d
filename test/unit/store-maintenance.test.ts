import { describe, expect, it, vi } from 'vitest';
import { StoreMaintenance } from '../../src/app/store-maintenance.js';
import type { Store } from '../../src/store/types.js';

describe('StoreMaintenance', () => {
  it('vacuums on its timer without overlapping itself, says so once, and survives a failure', async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      let release: () => void = () => {};
      const answers: Array<() => Promise<string[]>> = [
        () => new Promise<string[]>((resolve) => (release = () => resolve(['task_instance']))),
        () => Promise.reject(new Error('connection terminated')),
        async () => ['task_instance', 'dag_run'],
      ];
      const store = { vacuumIfNeeded: () => answers[calls++]!() } as unknown as Store;
      const lines: string[] = [];
      const m = new StoreMaintenance(store, (level, message) => lines.push(`${level} ${message}`), 1000);
      m.start();
      await vi.advanceTimersByTimeAsync(3500); // three ticks, one slow pass: no second call meanwhile
      expect(calls).toBe(1);
      release();
      await vi.advanceTimersByTimeAsync(2000); // the failing pass, then the third
      expect(calls).toBe(3);
      await m.stop();
      expect(lines).toEqual([
        "info the database's autovacuum is off: kiln vacuums task_instance itself when dead rows pile up (said once)",
        'warn database maintenance (vacuum) failed: connection terminated',
      ]);
    } finally {
      vi.useRealTimers();
    }
  });
});
