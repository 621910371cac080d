import type { RunState } from './run-state.js';

/**
 * Runs with a dagrunTimeout, behind ONE timer set for the earliest deadline (a run's start
 * plus its DAG's timeout): nothing is polled.
 */
export class RunTimeouts {
  private readonly deadlines = new Map<string, { run: RunState; at: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly now: () => number,
    private readonly onTimeout: (run: RunState) => void,
  ) {}

  /** Arms the run's deadline if its DAG has a timeout and the run has started. */
  arm(run: RunState): void {
    const ms = run.dag.dagrunTimeoutMs;
    if (ms == null || run.run.startedAt === null) return;
    this.deadlines.set(run.key, { run, at: run.run.startedAt + ms });
    this.rearm();
  }

  remove(run: RunState): void {
    if (this.deadlines.delete(run.key)) this.rearm();
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.deadlines.clear();
  }

  private rearm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    let next = Infinity;
    for (const d of this.deadlines.values()) next = Math.min(next, d.at);
    if (next === Infinity) return;
    // setTimeout caps at ~24.8 days; a longer wait just re-arms when it fires.
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(0, next - this.now()), 2 ** 31 - 1));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    const now = this.now();
    const due = [...this.deadlines.values()].filter((d) => d.at <= now);
    for (const d of due) this.deadlines.delete(d.run.key);
    for (const d of due) this.onTimeout(d.run);
    this.rearm();
  }
}
