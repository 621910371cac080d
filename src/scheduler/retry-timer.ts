import type { RunState } from './run-state.js';

interface Due {
  run: RunState;
  tiId: string;
  at: number;
}

/**
 * Task instances waiting out their retry delay, behind ONE timer set for the earliest due
 * time: no polling, and nothing to do while no retry is pending.
 */
export class RetryTimer {
  private readonly waiting = new Map<string, Due>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly now: () => number,
    /** Called with every retry that is due, once its time has come. */
    private readonly onDue: (due: ReadonlyArray<{ run: RunState; tiId: string }>) => void,
  ) {}

  arm(run: RunState, tiId: string, at: number): void {
    this.waiting.set(`${run.key}\u0000${tiId}`, { run, tiId, at });
    this.rearm();
  }

  remove(run: RunState, tiId: string): void {
    if (this.waiting.delete(`${run.key}\u0000${tiId}`)) this.rearm();
  }

  removeRun(run: RunState): void {
    let removed = false;
    for (const [key, due] of this.waiting) {
      if (due.run === run) removed = this.waiting.delete(key);
    }
    if (removed) this.rearm();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private rearm(): void {
    this.close();
    let earliest = Infinity;
    for (const due of this.waiting.values()) earliest = Math.min(earliest, due.at);
    if (earliest !== Infinity) this.timer = setTimeout(() => this.fire(), Math.max(0, earliest - this.now()));
  }

  private fire(): void {
    const now = this.now();
    const due: Due[] = [];
    for (const [key, entry] of this.waiting) {
      if (entry.at > now) continue;
      this.waiting.delete(key);
      due.push(entry);
    }
    this.rearm();
    if (due.length > 0) this.onDue(due);
  }
}
