import type { TiState } from '../dag/types.js';
import type { TiRow } from '../store/types.js';
import { aggregateState, formatStateCounts, mappedLabel, type StateCounts } from '../app/instance-summary.js';

const SYMBOL: Record<string, string> = {
  none: ' ', scheduled: '·', queued: '…', running: '▶', success: '✔', failed: '✘', up_for_retry: '↻', skipped: '↷', upstream_failed: '⊘', up_for_reschedule: '◷', removed: '−',
};
const FINISHED_LINE: readonly TiState[] = ['success', 'failed', 'up_for_retry', 'skipped', 'upstream_failed'];
const DONE: readonly TiState[] = ['success', 'failed', 'skipped', 'upstream_failed', 'removed'];
/** In a pipe, at most this many lines about single instances of one mapped task (its failures and retries); then one summary line. */
const MAPPED_LINES = 5;

/** Each task's instances as the engine keeps them (RunState.byTask): ids in map-index order, counts by state. */
export type TaskGroups = ReadonlyMap<string, { readonly ids: readonly string[]; readonly counts: Readonly<Record<TiState, number>> }>;

/**
 * Shows task states while a run goes. On a terminal it redraws one line per task at most
 * every 100 ms; elsewhere (CI logs, pipes) it prints one line per finished try. A mapped
 * task is one line either way (`square [0..9999]  9990 success, 10 running`): in a pipe, its
 * first few failed or retried instances, then one line when all its instances are done.
 */
export class LiveView {
  private readonly tty: boolean;
  private lines = 0;
  private timer: NodeJS.Timeout | null = null;
  private latest: { all: ReadonlyMap<string, TiRow>; tasks: TaskGroups | undefined } | null = null;
  /** Pipe mode: lines printed about single instances of each mapped task, and the mapped tasks summed up already. */
  private readonly instanceLines = new Map<string, number>();
  private readonly summed = new Set<string>();

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY) && !process.env.CI;
  }

  update(ti: TiRow, all: ReadonlyMap<string, TiRow>, tasks?: TaskGroups): void {
    if (!this.tty) {
      if (ti.mapIndex >= 0) this.mappedLine(ti, tasks?.get(ti.taskId));
      else if (FINISHED_LINE.includes(ti.state)) this.out.write(`${tryLine(ti, ti.taskId)}\n`);
      return;
    }
    this.latest = { all, tasks };
    this.timer ??= setTimeout(() => this.draw(), 100);
  }

  /** Final redraw, then leave the screen to the summary. */
  done(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.tty && this.latest) this.draw();
  }

  private mappedLine(ti: TiRow, group: { ids: readonly string[]; counts: Readonly<Record<TiState, number>> } | undefined): void {
    const label = `${ti.taskId}[${ti.mapIndex}]`;
    if (ti.state === 'failed' || ti.state === 'up_for_retry') {
      const n = (this.instanceLines.get(ti.taskId) ?? 0) + 1;
      this.instanceLines.set(ti.taskId, n);
      if (n <= MAPPED_LINES) this.out.write(`${tryLine(ti, label)}\n`);
      if (n === MAPPED_LINES + 1) this.out.write(`  (more failed or retried instances of ${ti.taskId}: see its summary line, \`kiln runs show\`)\n`);
    }
    if (group === undefined || this.summed.has(ti.taskId)) return;
    const done = DONE.reduce((n, s) => n + group.counts[s], 0);
    if (done < group.ids.length) return;
    this.summed.add(ti.taskId);
    const counts = countsOf(group.counts);
    this.out.write(`${SYMBOL[aggregateState(counts)] ?? '?'} ${mappedLabel(ti.taskId, 0, group.ids.length - 1)} ${formatStateCounts(counts)}\n`);
  }

  private draw(): void {
    this.timer = null;
    if (!this.latest) return;
    const { all, tasks } = this.latest;
    const lines: Array<[symbol: string, name: string, text: string]> = [];
    if (tasks === undefined) {
      for (const r of all.values()) lines.push([SYMBOL[r.state] ?? '?', r.taskId, stateText(r)]);
    } else {
      for (const [taskId, group] of tasks) {
        const first = group.ids.length > 0 ? all.get(group.ids[0]!) : undefined;
        if (first === undefined) continue;
        if (first.mapIndex < 0) {
          for (const id of group.ids) {
            const r = all.get(id)!;
            lines.push([SYMBOL[r.state] ?? '?', r.taskId, stateText(r)]);
          }
          continue;
        }
        const last = all.get(group.ids[group.ids.length - 1]!)!;
        const counts = countsOf(group.counts);
        lines.push([SYMBOL[aggregateState(counts)] ?? '?', mappedLabel(taskId, first.mapIndex, last.mapIndex), formatStateCounts(counts)]);
      }
    }
    const width = Math.max(0, ...lines.map((l) => l[1].length));
    const text = lines.map(([symbol, name, state]) => `${symbol} ${name.padEnd(width)}  ${state}`).join('\n');
    if (this.lines > 0) this.out.write(`\x1b[${this.lines}A\x1b[0J`);
    this.out.write(`${text}\n`);
    this.lines = lines.length;
  }
}

function tryLine(ti: TiRow, name: string): string {
  return `${SYMBOL[ti.state]} ${name} ${ti.state}${ti.tryNumber > 1 ? ` (try ${ti.tryNumber})` : ''}${ti.error ? `: ${ti.error.split('\n')[0]}` : ''}`;
}

function stateText(r: TiRow): string {
  return `${r.state}${r.tryNumber > 1 ? ` (try ${r.tryNumber})` : ''}`;
}

function countsOf(counts: Readonly<Record<TiState, number>>): StateCounts {
  const out: StateCounts = {};
  for (const [s, n] of Object.entries(counts) as Array<[TiState, number]>) if (n > 0) out[s] = n;
  return out;
}
