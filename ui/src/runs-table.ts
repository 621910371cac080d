/** A DAG's runs as a table (newest first), read once and then kept current from the change feed. */
import type { ApiChangeEvent, ApiRun } from '../../src/server/api-types.js';
import { api, enc } from './api.js';
import { duration, h, time } from './dom.js';

export class RunsTable {
  readonly el = h('div', { 'data-testid': 'runs-table' });
  private readonly body = h('tbody', {});
  private readonly rows = new Map<string, { state: HTMLElement; row: HTMLTableRowElement }>();
  private loaded = false;

  constructor(private readonly dagId: string) {
    this.el.append(
      h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ...['run', 'type', 'state', 'logical date', 'data interval', 'started', 'duration'].map((t) => h('th', {}, t)))),
        this.body,
      ),
    );
  }

  async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    const { runs } = await api.get<{ runs: ApiRun[] }>(`/dags/${enc(this.dagId)}/runs?limit=100`);
    for (const r of runs) this.body.append(this.row(r));
  }

  /** A run event: its row's state, or a new row on top. */
  onEvent(e: ApiChangeEvent): void {
    if (!this.loaded || e.kind !== 'run' || e.dagId !== this.dagId) return;
    const known = this.rows.get(e.runId);
    if (known) {
      known.state.replaceChildren(h('span', { class: `dot st-${e.state}` }), e.state);
      known.row.dataset.state = e.state;
      if (e.state === 'success' || e.state === 'failed') {
        // Its end time and duration: read the run once it ended.
        void api.get<{ run: ApiRun }>(`/dags/${enc(this.dagId)}/runs/${enc(e.runId)}`).then(({ run }) => known.row.replaceWith(this.row(run)), () => {});
      }
      return;
    }
    // A new run: its row from the run itself (one read per new run, driven by the feed).
    void api.get<{ run: ApiRun }>(`/dags/${enc(this.dagId)}/runs/${enc(e.runId)}`).then(({ run }) => {
      if (!this.rows.has(run.runId)) this.body.prepend(this.row(run));
    }, () => {});
  }

  private row(r: ApiRun): HTMLTableRowElement {
    const state = h('td', {}, h('span', { class: `dot st-${r.state}` }), r.state);
    const ended = h('td', {}, r.startedAt !== null && r.endedAt !== null ? duration(r.endedAt - r.startedAt) : '-');
    const row = h('tr', { 'data-run': r.runId, 'data-state': r.state },
      h('td', {}, r.runId), h('td', {}, r.runType), state, h('td', {}, time(r.logicalDate)),
      h('td', {}, r.dataIntervalStart === r.dataIntervalEnd ? '-' : `${time(r.dataIntervalStart)} → ${time(r.dataIntervalEnd)}`),
      h('td', {}, time(r.startedAt)), ended,
    );
    this.rows.set(r.runId, { state, row });
    return row;
  }
}
