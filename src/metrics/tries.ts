/**
 * Per-try metrics, fed by the executor: its events (started, finished with usage, exit code,
 * signal, error code) and the hand-overs seen by observeExecutor() (observer.ts). One Map
 * entry per try in flight holds the cells it will touch, so an event costs a Map lookup and
 * a few additions; labels are looked up once per try, never built per event.
 */
import type { Isolation } from '../dag/types.js';
import type { ExecutorEvent, TaskWork } from '../executor/types.js';
import type { Families } from './catalog.js';
import type { CounterCell, HistogramCell } from './families.js';
import { tryExitReason } from './exit-reason.js';

interface TryInFlight {
  dagId: string;
  taskId: string;
  isolation: Isolation;
  /** performance.now() at submit. */
  submittedAt: number;
  started: boolean;
  starts: CounterCell;
}

export class TryMetrics {
  private readonly inFlight = new Map<string, TryInFlight>();

  constructor(
    private readonly f: Families,
    private readonly taskLabels: boolean,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Tries handed to the executor and not finished yet (waiting for a worker or running). */
  get running(): number {
    return this.inFlight.size;
  }

  submitted(work: TaskWork): void {
    this.inFlight.set(work.key, {
      dagId: work.dagId,
      taskId: work.taskId,
      isolation: work.isolation,
      submittedAt: this.clock(),
      started: false,
      starts: this.f.tiStarts.cell(work.dagId),
    });
  }

  /** A submit the executor refused: the try never was. */
  refused(key: string): void {
    this.inFlight.delete(key);
  }

  onEvent(event: ExecutorEvent): void {
    if (event.type === 'started') {
      const t = this.inFlight.get(event.key);
      if (t === undefined || t.started) return;
      t.started = true;
      t.isolation = event.isolation;
      t.starts.inc();
      this.cell(this.f.queuedDuration, t).observe((this.clock() - t.submittedAt) / 1000);
    } else if (event.type === 'finished') {
      const t = this.inFlight.get(event.key);
      if (t === undefined) return;
      this.inFlight.delete(event.key);
      const reason = tryExitReason(event);
      if (reason !== null) this.f.tryExits.cell(t.dagId, reason, event.signal ?? '').inc();
      if (!t.started) return; // never ran on a worker: no duration, no usage
      const d = this.f.tryDuration;
      (this.taskLabels ? d.cell(t.dagId, t.isolation, event.outcome, t.taskId) : d.cell(t.dagId, t.isolation, event.outcome)).observe(event.durationMs / 1000);
      const { peakRssBytes, cpuMs } = event.usage;
      if (peakRssBytes !== null) this.cell(this.f.tryPeakRss, t).observe(peakRssBytes);
      if (cpuMs !== null && cpuMs > 0) this.f.tryCpu.cell(t.dagId, t.isolation).inc(cpuMs / 1000);
    }
  }

  private cell(family: { cell(...values: string[]): HistogramCell }, t: TryInFlight): HistogramCell {
    return this.taskLabels ? family.cell(t.dagId, t.isolation, t.taskId) : family.cell(t.dagId, t.isolation);
  }
}
