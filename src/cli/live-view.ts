import type { TiRow } from '../store/types.js';

const SYMBOL: Record<string, string> = {
  none: ' ', scheduled: '·', queued: '…', running: '▶', success: '✔', failed: '✘', up_for_retry: '↻', skipped: '↷', upstream_failed: '⊘', up_for_reschedule: '◷',
};

/**
 * Shows task states while a run goes. On a terminal it redraws one line per task at most
 * every 100 ms; elsewhere (CI logs, pipes) it prints one line per finished try.
 */
export class LiveView {
  private readonly tty: boolean;
  private lines = 0;
  private timer: NodeJS.Timeout | null = null;
  private latest: ReadonlyMap<string, TiRow> | null = null;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY) && !process.env.CI;
  }

  update(ti: TiRow, all: ReadonlyMap<string, TiRow>): void {
    if (!this.tty) {
      if (['success', 'failed', 'up_for_retry', 'skipped', 'upstream_failed'].includes(ti.state)) {
        this.out.write(`${SYMBOL[ti.state]} ${ti.taskId} ${ti.state}${ti.tryNumber > 1 ? ` (try ${ti.tryNumber})` : ''}${ti.error ? `: ${ti.error.split('\n')[0]}` : ''}\n`);
      }
      return;
    }
    this.latest = all;
    this.timer ??= setTimeout(() => this.draw(), 100);
  }

  /** Final redraw, then leave the screen to the summary. */
  done(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.tty && this.latest) this.draw();
  }

  private draw(): void {
    this.timer = null;
    if (!this.latest) return;
    const rows = [...this.latest.values()];
    const width = Math.max(...rows.map((r) => r.taskId.length));
    const text = rows.map((r) => `${SYMBOL[r.state] ?? '?'} ${r.taskId.padEnd(width)}  ${r.state}${r.tryNumber > 1 ? ` (try ${r.tryNumber})` : ''}`).join('\n');
    if (this.lines > 0) this.out.write(`\x1b[${this.lines}A\x1b[0J`);
    this.out.write(`${text}\n`);
    this.lines = rows.length;
  }
}
