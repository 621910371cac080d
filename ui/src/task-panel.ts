/**
 * The task-instance panel: tabs per try (timings, exit code or signal, error, peak RSS, CPU),
 * the try's log (log-view.ts: its tail, then live over SSE, virtualised, text only), the XCom,
 * and clear/mark, each shown as a dry run first and done only once confirmed.
 *
 * A mapped task opens on its instance list first: the counts by state, and its instances a
 * page at a time (100 rows, never all 10,000), filtered by state; choosing one shows that
 * instance as above, with a way back to the list.
 */
import type { ApiChangeEvent, ApiClearResult, ApiMarkResult, ApiTaskHistory, ApiTaskInstance, ApiTaskInstancePage, ApiTry, TiState } from '../../src/server/api-types.js';
import { api, enc } from './api.js';
import { confirmDialog } from './dialogs.js';
import { bytes, clear, duration, h, sparkline, time } from './dom.js';
import { describeCounts, describeIds, fillBar, progress, total, type Counts } from './instances.js';
import { LogView } from './log-view.js';

/** Rows of a mapped task's instance list shown at once. */
const PAGE = 100;
/** The XCom box shows at most this much of a value (a mapped task's collected list can be long). */
const MAX_XCOM_CHARS = 100_000;

/** What the panel shows: one task instance, or a mapped task's instance list. */
export type PanelKey = { runId: string; taskId: string; mapIndex: number; list: boolean };

interface ListState {
  runId: string;
  taskId: string;
  offset: number;
  state: TiState | '';
  /** The instance rows on the page, by map index: patched from the feed. */
  rows: Map<number, HTMLTableRowElement>;
  counts: () => Counts;
}

export class TaskPanel {
  readonly el = h('aside', { class: 'panel', 'data-testid': 'task-panel', 'aria-label': 'task instance' });
  private ti: ApiTaskInstance | null = null;
  private list: ListState | null = null;
  /** Set while an instance of a mapped task is shown: back to its list. */
  private backTo: ListState | null = null;
  private tryNumber = 0;
  private log: LogView | null = null;

  constructor(
    private readonly dagId: string,
    private readonly dialog: HTMLDialogElement,
    private readonly onClose: () => void,
  ) {}

  get key(): PanelKey | null {
    if (this.list !== null) return { runId: this.list.runId, taskId: this.list.taskId, mapIndex: -1, list: true };
    return this.ti === null ? null : { runId: this.ti.runId, taskId: this.ti.taskId, mapIndex: this.ti.mapIndex, list: false };
  }

  async open(runId: string, taskId: string, mapIndex = -1): Promise<void> {
    this.stopLog();
    const ti = await api.get<ApiTaskInstance>(this.path(runId, taskId, mapIndex));
    this.ti = ti;
    this.list = null;
    if (mapIndex < 0) this.backTo = null;
    this.tryNumber = ti.tryNumber;
    this.render();
  }

  /** A mapped task in one run: its counts, and its instances a page at a time. `counts` reads the grid cell's (kept current from the feed). */
  async openMapped(runId: string, taskId: string, counts: () => Counts): Promise<void> {
    this.stopLog();
    this.ti = null;
    this.backTo = null;
    this.list = { runId, taskId, offset: 0, state: '', rows: new Map(), counts };
    await this.renderList();
  }

  /** The counts of a mapped task changed (read again by its grid cell): those of its list, if shown. */
  countsChanged(runId: string, taskId: string): void {
    if (this.list !== null && this.list.runId === runId && this.list.taskId === taskId) this.renderCounts();
  }

  /** A feed event of an instance of the mapped task whose list is shown: its row, and the counts. */
  mappedChanged(e: ApiChangeEvent): void {
    const list = this.list;
    if (list === null || e.runId !== list.runId || e.taskId !== list.taskId) return;
    const row = list.rows.get(e.mapIndex ?? -1);
    if (row) {
      row.dataset.state = e.state;
      row.querySelector('[data-col="state"]')!.replaceChildren(h('span', { class: `dot st-${e.state}` }), e.state);
      row.querySelector('[data-col="try"]')!.textContent = String(e.tryNumber ?? 0);
    }
    this.renderCounts();
  }

  /** The feed says this task instance changed: read it again (the open log keeps following). */
  async refresh(): Promise<void> {
    const asked = this.ti;
    if (asked === null) return;
    const fresh = await api.get<ApiTaskInstance>(this.path(asked.runId, asked.taskId, asked.mapIndex));
    // Another instance was opened meanwhile: this answer is not for it.
    if (this.ti === null || this.ti.runId !== asked.runId || this.ti.taskId !== asked.taskId || this.ti.mapIndex !== asked.mapIndex) return;
    const followLatest = this.tryNumber === this.ti.tryNumber;
    const newTry = fresh.tryNumber !== this.ti.tryNumber;
    this.ti = fresh;
    if (followLatest && newTry) {
      this.tryNumber = fresh.tryNumber;
      this.stopLog();
    }
    this.render(!newTry);
  }

  close(): void {
    this.stopLog();
    this.ti = null;
    this.list = null;
    this.backTo = null;
    this.el.remove();
  }

  /** The task instance's path; `query` goes after its `?mapIndex=` (a mapped instance's). */
  private path(runId: string, taskId: string, mapIndex = -1, sub = ''): string {
    return `/dags/${enc(this.dagId)}/runs/${enc(runId)}/tasks/${enc(taskId)}${sub}${mapIndex >= 0 ? `?mapIndex=${mapIndex}` : ''}`;
  }

  private async renderList(): Promise<void> {
    const list = this.list!;
    const query = `offset=${list.offset}&limit=${PAGE}${list.state === '' ? '' : `&state=${list.state}`}`;
    const page = await api.get<ApiTaskInstancePage>(`/dags/${enc(this.dagId)}/runs/${enc(list.runId)}/tasks/${enc(list.taskId)}/instances?${query}`);
    if (this.list !== list) return;
    list.rows.clear();
    clear(this.el);
    const counts = list.counts();
    const shown = total(counts) > 0 ? counts : page.states;
    const filter = h('select', {
      'aria-label': 'only instances in this state', 'data-testid': 'instance-filter',
      onchange: (e: Event) => {
        list.state = (e.target as HTMLSelectElement).value as TiState | '';
        list.offset = 0;
        void this.renderList().catch((err: Error) => window.alert(err.message));
      },
    },
      h('option', { value: '' }, `all ${page.count} instances`),
      ...(Object.keys(page.states) as TiState[]).map((s) => h('option', { value: s, selected: s === list.state }, `${s} (${page.states[s]})`)),
    );
    const body = h('tbody', {});
    for (const i of page.instances) {
      const row = h('tr', { class: 'instance', 'data-map-index': i.mapIndex, 'data-state': i.state, tabindex: 0, onclick: () => this.openInstance(list, i.mapIndex),
        onkeydown: (e: Event) => {
          if ((e as KeyboardEvent).key === 'Enter') this.openInstance(list, i.mapIndex);
        } },
        h('td', {}, `[${i.mapIndex}]`),
        h('td', { 'data-col': 'state' }, h('span', { class: `dot st-${i.state}` }), i.state),
        h('td', { 'data-col': 'try' }, String(i.tryNumber)),
        h('td', {}, duration(i.durationMs)),
        h('td', { class: 'muted' }, i.error ?? ''),
      );
      list.rows.set(i.mapIndex, row);
      body.append(row);
    }
    const last = Math.min(page.total, page.offset + page.instances.length);
    const go = (offset: number) => {
      list.offset = offset;
      void this.renderList().catch((err: Error) => window.alert(err.message));
    };
    this.el.append(
      h('div', { class: 'toolbar' },
        h('h2', {}, list.taskId),
        h('span', { class: 'muted' }, 'mapped'),
        h('button', { type: 'button', 'aria-label': 'close panel', onclick: () => this.onClose() }, '×'),
      ),
      h('div', { class: 'muted' }, `run ${list.runId}`),
      h('div', { class: 'map-summary', 'data-testid': 'map-summary' },
        h('span', { class: 'map-bar', 'data-testid': 'map-bar' }),
        h('strong', { 'data-testid': 'map-progress' }, progress(shown)),
        h('span', { class: 'muted', 'data-testid': 'map-counts' }, describeCounts(shown)),
      ),
      h('div', { class: 'toolbar' }, filter),
      h('table', { class: 'list instances', 'data-testid': 'instance-list' },
        h('thead', {}, h('tr', {}, ...['#', 'state', 'try', 'duration', 'error'].map((t) => h('th', {}, t)))),
        body,
      ),
      h('div', { class: 'toolbar', 'data-testid': 'instance-pager' },
        h('button', { type: 'button', 'data-testid': 'instances-prev', disabled: page.offset === 0, onclick: () => go(Math.max(0, page.offset - PAGE)) }, '‹ Previous'),
        h('span', { 'data-testid': 'instances-range' }, page.total === 0 ? 'none' : `${page.offset + 1}–${last} of ${page.total}`),
        h('button', { type: 'button', 'data-testid': 'instances-next', disabled: last >= page.total, onclick: () => go(page.offset + PAGE) }, 'Next ›'),
      ),
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', 'data-testid': 'clear', onclick: () => this.clearTask(list.runId, list.taskId, -1, false) }, 'Clear all instances'),
        h('button', { type: 'button', 'data-testid': 'clear-downstream', onclick: () => this.clearTask(list.runId, list.taskId, -1, true) }, 'Clear with downstream'),
      ),
    );
    this.renderCounts();
    const xcom = h('pre', { class: 'log', 'data-testid': 'xcom' });
    xcom.style.height = 'auto';
    xcom.style.maxHeight = '200px';
    this.el.append(h('strong', {}, 'XCom (the successful instances\' values, in map-index order)'), xcom);
    void api.get<{ value: unknown }>(`${this.path(list.runId, list.taskId)}/xcom`).then((x) => (xcom.textContent = shorten(JSON.stringify(x.value, null, 2))), () => {});
  }

  /** The list's counts as the grid cell has them now. */
  private renderCounts(): void {
    const list = this.list;
    if (list === null) return;
    const counts = list.counts();
    if (total(counts) === 0) return;
    const bar = this.el.querySelector<HTMLElement>('[data-testid="map-bar"]');
    if (bar) fillBar(bar, counts, 'width');
    const p = this.el.querySelector('[data-testid="map-progress"]');
    if (p) p.textContent = progress(counts);
    const c = this.el.querySelector('[data-testid="map-counts"]');
    if (c) c.textContent = describeCounts(counts);
  }

  private openInstance(list: ListState, mapIndex: number): void {
    this.backTo = list;
    void this.open(list.runId, list.taskId, mapIndex).catch((err: Error) => window.alert(err.message));
  }

  private backToList(): void {
    const list = this.backTo;
    if (list === null) return;
    this.stopLog();
    this.ti = null;
    this.backTo = null;
    this.list = list;
    void this.renderList().catch((err: Error) => window.alert(err.message));
  }

  private render(keepLog = false): void {
    const ti = this.ti!;
    const kept = keepLog ? this.log : null;
    if (kept === null) this.stopLog();
    clear(this.el);
    const tryData = ti.tries.find((t) => t.tryNumber === this.tryNumber);
    const mapped = ti.mapIndex >= 0;
    if (this.backTo !== null) {
      this.el.append(h('button', { type: 'button', class: 'back', 'data-testid': 'back-to-instances', onclick: () => this.backToList() }, `← all instances of ${ti.taskId}`));
    }
    this.el.append(
      h('div', { class: 'toolbar' },
        h('h2', { 'data-testid': 'ti-name' }, mapped ? `${ti.taskId}[${ti.mapIndex}]` : ti.taskId),
        h('span', { class: `dot st-${ti.state}` }),
        h('span', { 'data-testid': 'ti-state' }, ti.state),
        h('button', { type: 'button', 'aria-label': 'close panel', onclick: () => this.onClose() }, '×'),
      ),
      h('div', { class: 'muted' }, `run ${ti.runId} · try ${ti.tryNumber} of ${ti.maxTries} · pool ${ti.pool}`),
      h('div', { class: 'tabs', role: 'tablist' },
        ...ti.tries.map((t) =>
          h('button', { type: 'button', role: 'tab', 'aria-selected': t.tryNumber === this.tryNumber ? 'true' : 'false', onclick: () => this.selectTry(t.tryNumber) }, `try ${t.tryNumber}`),
        ),
      ),
      tryData ? facts(tryData) : h('p', { class: 'muted' }, 'Not run yet.'),
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', 'data-testid': 'clear', onclick: () => this.clearTask(ti.runId, ti.taskId, ti.mapIndex, false) }, mapped ? 'Clear this instance' : 'Clear'),
        h('button', { type: 'button', 'data-testid': 'clear-downstream', onclick: () => this.clearTask(ti.runId, ti.taskId, ti.mapIndex, true) }, 'Clear with downstream'),
        h('button', { type: 'button', 'data-testid': 'mark-success', onclick: () => this.mark('success') }, 'Mark success'),
        h('button', { type: 'button', class: 'danger', 'data-testid': 'mark-failed', onclick: () => this.mark('failed') }, 'Mark failed'),
      ),
    );
    if (this.tryNumber >= 1) {
      if (kept !== null) {
        this.el.append(kept.el);
        kept.shown();
      } else {
        const base = `/dags/${enc(this.dagId)}/runs/${enc(ti.runId)}/tasks/${enc(ti.taskId)}/tries/${this.tryNumber}/log`;
        const mapIndex = ti.mapIndex;
        this.log = new LogView((sub, query = {}) => {
          const q = new URLSearchParams();
          if (mapIndex >= 0) q.set('mapIndex', String(mapIndex));
          for (const [k, v] of Object.entries(query)) q.set(k, String(v));
          const qs = q.toString();
          return `${base}${sub}${qs === '' ? '' : `?${qs}`}`;
        }, `Log of try ${this.tryNumber}`);
        this.el.append(this.log.el);
      }
    }
    const trend = h('div', { 'data-testid': 'rss-trend' });
    this.el.append(h('strong', {}, `Peak RSS and duration, last 30 runs${mapped ? ` (map index ${ti.mapIndex})` : ''}`), trend);
    void api.get<ApiTaskHistory>(`/dags/${enc(this.dagId)}/tasks/${enc(ti.taskId)}/history?limit=30${mapped ? `&mapIndex=${ti.mapIndex}` : ''}`).then((hist) => {
      const oldestFirst = [...hist.instances].reverse();
      const rss = oldestFirst.map((i) => i.peakRssBytes);
      const known = rss.filter((v): v is number => v !== null);
      trend.replaceChildren(
        h('div', {}, sparkline(rss, 'peak RSS per run'), ' ', h('span', { class: 'muted' }, known.length === 0 ? 'no data yet' : `max ${bytes(Math.max(...known))}, latest ${bytes(known[known.length - 1])}`)),
        h('div', {}, sparkline(oldestFirst.map((i) => i.durationMs), 'duration per run')),
      );
      trend.dataset.points = String(known.length);
    }, () => {});
    const xcom = h('pre', { class: 'log', style: undefined, 'data-testid': 'xcom' });
    xcom.style.height = 'auto';
    this.el.append(h('strong', {}, 'XCom'), xcom);
    void api.get<{ value: unknown }>(this.path(ti.runId, ti.taskId, ti.mapIndex, '/xcom')).then((x) => (xcom.textContent = shorten(JSON.stringify(x.value, null, 2))), () => {});
  }

  private selectTry(n: number): void {
    this.tryNumber = n;
    this.stopLog();
    this.render();
  }

  private stopLog(): void {
    this.log?.stop();
    this.log = null;
  }

  /** Clears a task (every instance: mapIndex -1 on a mapped task's list) or one instance of a mapped task, after its dry run. */
  private async clearTask(runId: string, taskId: string, mapIndex: number, downstream: boolean): Promise<void> {
    const body = { taskId, downstream, ...(mapIndex >= 0 ? { mapIndex } : {}) };
    const url = `/dags/${enc(this.dagId)}/runs/${enc(runId)}/clear`;
    const name = mapIndex >= 0 ? `${taskId}[${mapIndex}]` : taskId;
    try {
      const dry = await api.post<ApiClearResult>(url, { ...body, dryRun: true });
      const notes = describeIds(dry.skipped.map((s) => (s.mapIndex >= 0 ? `${s.taskId}[${s.mapIndex}]` : s.taskId))).map((t) => `${t}: queued or running, left alone`);
      if (!(await confirmDialog(this.dialog, `Clear ${name}${downstream ? ' and downstream' : ''}`, describeIds(dry.cleared).map((t) => `${t}: cleared, runs again`), notes))) return;
      const done = await api.post<ApiClearResult>(url, body);
      if (done.conflicts.length > 0) window.alert(`${describeIds(done.conflicts).join(', ')} changed meanwhile and were not cleared`);
    } catch (err) {
      window.alert((err as Error).message);
    }
  }

  private async mark(state: 'success' | 'failed'): Promise<void> {
    const ti = this.ti!;
    const url = this.path(ti.runId, ti.taskId, ti.mapIndex, '/mark');
    const name = ti.mapIndex >= 0 ? `${ti.taskId}[${ti.mapIndex}]` : ti.taskId;
    try {
      const dry = await api.post<ApiMarkResult>(url, { state, dryRun: true });
      const lines = dry.changed.map((c) => `${c.mapIndex >= 0 ? `${c.taskId}[${c.mapIndex}]` : c.taskId}: ${c.from} → ${c.to}`);
      if (!(await confirmDialog(this.dialog, `Mark ${name} ${state}`, lines, [`The run would be ${dry.runState}. Downstream tasks are not marked.`]))) return;
      await api.post<ApiMarkResult>(url, { state });
    } catch (err) {
      window.alert((err as Error).message);
    }
  }
}

function facts(t: ApiTry) {
  if (!t.recorded) {
    return h('p', { class: 'muted', 'data-testid': 'try-facts' }, `kiln keeps the details of the latest try only; try ${t.tryNumber} kept its log.`);
  }
  const rows: Array<[string, string]> = [
    ['state', t.state ?? '-'],
    ['isolation', t.isolation ?? '-'],
    ['pid', t.pid === null ? '-' : String(t.pid)],
    ['queued', time(t.queuedAt)],
    ['started', time(t.startedAt)],
    ['ended', time(t.endedAt)],
    ['duration', duration(t.durationMs)],
    ['exit code', t.exitCode === null ? '-' : String(t.exitCode)],
    ['signal', t.signal ?? '-'],
    ['peak RSS', bytes(t.peakRssBytes)],
    ['CPU', duration(t.cpuMs)],
  ];
  return h('div', { 'data-testid': 'try-facts' },
    h('dl', { class: 'facts' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-fact': k }, v)])),
    t.error ? h('pre', { class: 'error' }, t.error) : null,
  );
}

function shorten(text: string): string {
  return text.length > MAX_XCOM_CHARS ? `${text.slice(0, MAX_XCOM_CHARS)}\n… (${text.length - MAX_XCOM_CHARS} more characters)` : text;
}
