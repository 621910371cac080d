/**
 * A mapped task's instances in the browser: their counts by state drawn as a bar, the state
 * that stands for them all (the order the API documents for ApiGridMappedCell), and
 * task-instance ids (`square[3]`) gathered per task for dialogs.
 */
import type { TiState } from '../../src/server/api-types.js';
import { h } from './dom.js';

export type Counts = Partial<Record<TiState, number>>;

/** The grid's order (src/app/instance-summary.ts STATE_PRIORITY): the first state any instance is in stands for them all. */
const PRIORITY: TiState[] = ['failed', 'upstream_failed', 'up_for_retry', 'up_for_reschedule', 'queued', 'scheduled', 'running', 'none', 'success', 'skipped', 'removed'];
/** The bar's order, bottom to top: done first, then what is still to come. */
const BAR_ORDER: TiState[] = ['success', 'skipped', 'removed', 'failed', 'upstream_failed', 'up_for_retry', 'up_for_reschedule', 'running', 'queued', 'scheduled', 'none'];

export function aggregateState(counts: Counts): TiState {
  return PRIORITY.find((s) => (counts[s] ?? 0) > 0) ?? 'none';
}

export function total(counts: Counts): number {
  return Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
}

/** `9998/10000`: successful instances of those that count (removed ones left out). */
export function progress(counts: Counts): string {
  return `${counts.success ?? 0}/${total(counts) - (counts.removed ?? 0)}`;
}

/** `9998 success, 2 failed`. */
export function describeCounts(counts: Counts): string {
  return BAR_ORDER.filter((s) => (counts[s] ?? 0) > 0).map((s) => `${counts[s]} ${s}`).join(', ');
}

/** The segments of a state bar (heights or widths in %, by `axis`), into `bar`. */
export function fillBar(bar: HTMLElement, counts: Counts, axis: 'height' | 'width'): void {
  const n = total(counts);
  bar.replaceChildren(
    ...BAR_ORDER.filter((s) => (counts[s] ?? 0) > 0).map((s) => {
      const seg = h('span', { class: `seg st-${s}`, 'data-state': s });
      seg.style[axis] = `${((counts[s] ?? 0) / Math.max(1, n)) * 100}%`;
      return seg;
    }),
  );
}

/** Map indexes as ranges: `0..9999`, `0..3, 5`. */
export function formatIndexes(indexes: number[]): string {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}..${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

/** Task-instance ids as lines, one per task: `list`, `square [0..9999] (10000 instances)`. */
export function describeIds(ids: string[]): string[] {
  const order: string[] = [];
  const mapped = new Map<string, number[]>();
  for (const id of ids) {
    const m = /^(.*)\[(\d+)\]$/.exec(id);
    if (!m) {
      order.push(id);
      continue;
    }
    if (!mapped.has(m[1]!)) {
      mapped.set(m[1]!, []);
      order.push(`\0${m[1]}`);
    }
    mapped.get(m[1]!)!.push(Number(m[2]));
  }
  return order.map((o) => {
    if (!o.startsWith('\0')) return o;
    const indexes = mapped.get(o.slice(1))!;
    return indexes.length === 1 ? `${o.slice(1)}[${indexes[0]}]` : `${o.slice(1)} [${formatIndexes(indexes)}] (${indexes.length} instances)`;
  });
}
