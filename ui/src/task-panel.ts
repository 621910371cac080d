/**
 * The task-instance panel: tabs per try (timings, exit code or signal, error, peak RSS, CPU),
 * the try's log (its tail, then live over SSE, text only), the XCom, and clear/mark, each
 * shown as a dry run first and done only once confirmed.
 */
import type { ApiClearResult, ApiMarkResult, ApiTaskHistory, ApiTaskInstance, ApiTry } from '../../src/server/api-types.js';
import { api, enc } from './api.js';
import { AnsiText } from './ansi.js';
import { confirmDialog } from './dialogs.js';
import { bytes, clear, duration, h, sparkline, time } from './dom.js';

/** The log viewer keeps at most this much text (the file may be far bigger; download it whole). */
const MAX_LOG_CHARS = 2_000_000;

export class TaskPanel {
  readonly el = h('aside', { class: 'panel', 'data-testid': 'task-panel', 'aria-label': 'task instance' });
  private ti: ApiTaskInstance | null = null;
  private tryNumber = 0;
  private log: EventSource | null = null;

  constructor(
    private readonly dagId: string,
    private readonly dialog: HTMLDialogElement,
    private readonly onClose: () => void,
  ) {}

  get key(): { runId: string; taskId: string } | null {
    return this.ti === null ? null : { runId: this.ti.runId, taskId: this.ti.taskId };
  }

  async open(runId: string, taskId: string): Promise<void> {
    this.stopLog();
    this.ti = await api.get<ApiTaskInstance>(this.path(runId, taskId));
    this.tryNumber = this.ti.tryNumber;
    this.render();
  }

  /** The feed says this task instance changed: read it again (the open log keeps following). */
  async refresh(): Promise<void> {
    if (this.ti === null) return;
    const fresh = await api.get<ApiTaskInstance>(this.path(this.ti.runId, this.ti.taskId));
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
    this.el.remove();
  }

  private path(runId: string, taskId: string): string {
    return `/dags/${enc(this.dagId)}/runs/${enc(runId)}/tasks/${enc(taskId)}`;
  }

  private render(keepLog = false): void {
    const ti = this.ti!;
    const logBox = keepLog && this.log !== null ? this.el.querySelector('pre[data-testid="log"]') : null;
    if (logBox === null) this.stopLog();
    clear(this.el);
    const tryData = ti.tries.find((t) => t.tryNumber === this.tryNumber);
    this.el.append(
      h('div', { class: 'toolbar' },
        h('h2', {}, `${ti.taskId}`),
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
        h('button', { type: 'button', 'data-testid': 'clear', onclick: () => this.clear(false) }, 'Clear'),
        h('button', { type: 'button', 'data-testid': 'clear-downstream', onclick: () => this.clear(true) }, 'Clear with downstream'),
        h('button', { type: 'button', 'data-testid': 'mark-success', onclick: () => this.mark('success') }, 'Mark success'),
        h('button', { type: 'button', class: 'danger', 'data-testid': 'mark-failed', onclick: () => this.mark('failed') }, 'Mark failed'),
      ),
    );
    if (this.tryNumber >= 1) {
      const base = `/api/v1${this.path(ti.runId, ti.taskId)}/tries/${this.tryNumber}/log`;
      this.el.append(
        h('div', { class: 'toolbar' }, h('strong', {}, `Log of try ${this.tryNumber}`), h('a', { href: `${base}/download` }, 'download')),
        logBox ?? this.startLog(base),
      );
    }
    const trend = h('div', { 'data-testid': 'rss-trend' });
    this.el.append(h('strong', {}, 'Peak RSS and duration, last 30 runs'), trend);
    void api.get<ApiTaskHistory>(`/dags/${enc(this.dagId)}/tasks/${enc(ti.taskId)}/history?limit=30`).then((hist) => {
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
    void api.get<{ value: unknown }>(`${this.path(ti.runId, ti.taskId)}/xcom`).then((x) => (xcom.textContent = JSON.stringify(x.value, null, 2)), () => {});
  }

  private selectTry(n: number): void {
    this.tryNumber = n;
    this.stopLog();
    this.render();
  }

  /** The tail first, then whatever the file grows by (the SSE id is the byte offset, so a reconnect resumes). */
  private startLog(base: string): HTMLElement {
    const pre = h('pre', { class: 'log', 'data-testid': 'log', tabindex: 0 });
    const ansi = new AnsiText();
    let shown = 0;
    const source = new EventSource(`${base}/stream`);
    this.log = source;
    source.addEventListener('log', (e) => {
      const { text } = JSON.parse((e as MessageEvent<string>).data) as { text: string };
      if (text === '') return;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      ansi.append(pre, text);
      shown += text.length;
      // Past the cap, the oldest text goes (the file itself is whole: download it).
      while (shown > MAX_LOG_CHARS && pre.firstChild) {
        shown -= pre.firstChild.textContent?.length ?? 0;
        pre.firstChild.remove();
      }
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    return pre;
  }

  private stopLog(): void {
    this.log?.close();
    this.log = null;
  }

  private async clear(downstream: boolean): Promise<void> {
    const ti = this.ti!;
    const body = { taskId: ti.taskId, downstream };
    const url = `/dags/${enc(this.dagId)}/runs/${enc(ti.runId)}/clear`;
    try {
      const dry = await api.post<ApiClearResult>(url, { ...body, dryRun: true });
      const notes = dry.skipped.map((s) => `${s.taskId} is ${s.state}: left alone`);
      if (!(await confirmDialog(this.dialog, `Clear ${ti.taskId}${downstream ? ' and downstream' : ''}`, dry.cleared.map((t) => `${t}: cleared, runs again`), notes))) return;
      const done = await api.post<ApiClearResult>(url, body);
      if (done.conflicts.length > 0) window.alert(`${done.conflicts.join(', ')} changed meanwhile and were not cleared`);
    } catch (err) {
      window.alert((err as Error).message);
    }
  }

  private async mark(state: 'success' | 'failed'): Promise<void> {
    const ti = this.ti!;
    const url = `${this.path(ti.runId, ti.taskId)}/mark`;
    try {
      const dry = await api.post<ApiMarkResult>(url, { state, dryRun: true });
      const lines = dry.changed.map((c) => `${c.taskId}: ${c.from} → ${c.to}`);
      if (!(await confirmDialog(this.dialog, `Mark ${ti.taskId} ${state}`, lines, [`The run would be ${dry.runState}. Downstream tasks are not marked.`]))) return;
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
