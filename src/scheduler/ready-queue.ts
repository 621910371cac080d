import type { RunState } from './run-state.js';

interface Entry {
  run: RunState;
  tiId: string;
  priority: number;
  seq: number;
}

/**
 * Task instances that may run, highest priorityWeight first, first come first served
 * within a priority. Entries blocked by a run or pool limit stay in place.
 */
export class ReadyQueue {
  private entries: Entry[] = [];
  private seq = 0;
  /** The live entry of each queued task instance; an entry not here was removed (dropped at the next drain). */
  private members = new Map<string, Entry>();

  /** Entries in the queue, removed ones not yet dropped included: 0 means nothing is ready. */
  get size(): number {
    return this.entries.length;
  }

  /** Behind the entries of the same priority; with `first`, ahead of them (a try put back in line). */
  push(run: RunState, tiId: string, priority: number, first = false): void {
    const id = `${run.key}\u0000${tiId}`;
    if (this.members.has(id)) return;
    const entry = { run, tiId, priority, seq: this.seq++ };
    this.members.set(id, entry);
    // Binary search for the first entry with lower priority (with `first`: lower or equal).
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = this.entries[mid]!.priority;
      if (p > priority || (p === priority && !first)) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.entries.length) this.entries.push(entry);
    else this.entries.splice(lo, 0, entry);
  }

  /** O(1): the entry stays in place, dead, until the next drain drops it (10,000 instances of a map skipped at once must not cost 10,000 scans). */
  remove(run: RunState, tiId: string): void {
    this.members.delete(`${run.key}\u0000${tiId}`);
  }

  removeRun(run: RunState): void {
    if (!this.entries.some((e) => e.run === run)) return;
    this.entries = this.entries.filter((e) => {
      if (e.run !== run) return true;
      this.members.delete(`${run.key}\u0000${e.tiId}`);
      return false;
    });
  }

  /** Visits entries in order; the visitor keeps, drops, or stops at each. */
  drain(visit: (run: RunState, tiId: string) => 'keep' | 'drop' | 'stop'): void {
    const kept: Entry[] = [];
    let i = 0;
    for (; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (this.members.get(`${e.run.key}\u0000${e.tiId}`) !== e) continue; // removed: dropped here
      const verdict = visit(e.run, e.tiId);
      if (verdict === 'stop') break;
      if (verdict === 'keep') kept.push(e);
      else this.members.delete(`${e.run.key}\u0000${e.tiId}`);
    }
    this.entries = i === 0 && kept.length === 0 ? this.entries : kept.concat(this.entries.slice(i));
  }
}
