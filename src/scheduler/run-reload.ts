/**
 * A run another process set back to 'queued' under us (`kiln tasks clear|mark`) is read again
 * (run-engine.ts, applyReloads): this is what its task instances in the database changed
 * against ours. Pure: the engine applies it.
 */
import type { TiRow } from '../store/types.js';
import { isActive, tiIdOf, type RunState } from './run-state.js';

export type ReloadDiff =
  /** A task instance was started elsewhere while we hold the run: only a fresh adoption can sort it out. */
  | { stale: true }
  /** The database's rows that differ from ours in state or try number. */
  | { stale: false; changed: TiRow[] };

/**
 * `ours(tiId)`: we have a write of that task instance pending; it expects what the database
 * held before, so its compare-and-set decides, not this read.
 */
export function diffReloaded(run: RunState, tis: readonly TiRow[], ours: (tiId: string) => boolean): ReloadDiff {
  const changed: TiRow[] = [];
  for (const db of tis) {
    const id = tiIdOf(db);
    const mem = run.tis.get(id);
    if (mem === undefined || ours(id)) continue;
    if (mem.state === db.state && mem.tryNumber === db.tryNumber) continue;
    if (isActive(db.state)) return { stale: true };
    changed.push(db);
  }
  return { stale: false, changed };
}
