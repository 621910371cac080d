/** The DAG list: pause toggle, schedule, next run, the states of the last runs, import errors. */
import type { ApiDagList, ApiDagSummary } from '../../src/server/api-types.js';
import { api, enc } from './api.js';
import { clear, h, time } from './dom.js';
import type { View, ViewContext } from './view.js';

export function dagsPage({ root, live }: ViewContext): View {
  let disposed = false;
  let reload: number | null = null;

  const render = (list: ApiDagList) => {
    clear(root);
    if (list.importErrors.length > 0) {
      root.append(
        h('div', { class: 'banner', role: 'alert', 'data-testid': 'import-errors' },
          h('strong', {}, `${list.importErrors.length} DAG file(s) failed to import`),
          ...list.importErrors.map((e) => h('pre', {}, e.error)),
        ),
      );
    }
    if (list.dags.length === 0) {
      root.append(h('p', { class: 'muted' }, 'No DAGs in the database yet: start a scheduler (or run `kiln dags list`) to read the DAG folder.'));
      return;
    }
    root.append(
      h('table', { class: 'list', 'data-testid': 'dag-list' },
        h('thead', {}, h('tr', {}, ...['DAG', 'active', 'schedule', 'next run', 'last runs', 'tasks'].map((t) => h('th', {}, t)))),
        h('tbody', {}, ...list.dags.map(row)),
      ),
    );
  };

  const row = (d: ApiDagSummary) => {
    const toggle = h('input', {
      type: 'checkbox', checked: !d.paused, 'aria-label': `${d.dagId} active (unpaused)`, 'data-testid': `pause-${d.dagId}`,
      onchange: async (e: Event) => {
        const box = e.target as HTMLInputElement;
        box.disabled = true;
        try {
          await api.post(`/dags/${enc(d.dagId)}/${box.checked ? 'unpause' : 'pause'}`);
        } catch (err) {
          box.checked = !box.checked;
          window.alert((err as Error).message);
        } finally {
          box.disabled = false;
        }
      },
    });
    return h('tr', {},
      h('td', {}, h('a', { href: `#/dags/${enc(d.dagId)}` }, d.dagId), d.description ? h('div', { class: 'muted' }, d.description) : null),
      h('td', {}, toggle),
      h('td', {}, d.schedule ?? 'manual'),
      h('td', {}, d.nextRun ? time(d.nextRun.dueAt) : '-'),
      h('td', {}, ...[...d.lastRuns].reverse().map((r) => h('span', { class: `dot st-${r.state}`, title: `${r.runId}: ${r.state}` }))),
      h('td', {}, d.tasks),
    );
  };

  const load = async () => {
    try {
      const list = await api.get<ApiDagList>('/dags?lastRuns=10');
      if (!disposed) render(list);
    } catch (err) {
      if (!disposed) root.replaceChildren(h('pre', { class: 'error' }, (err as Error).message));
    }
  };
  void load();
  // A run that starts or ends changes a row: reload the list once, shortly after (driven by the feed, never a timer loop).
  const off = live.onChange((e) => {
    if (e.kind !== 'run' || reload !== null) return;
    reload = window.setTimeout(() => {
      reload = null;
      void load();
    }, 300);
  });
  const offReset = live.onReset(() => void load());
  return {
    dispose() {
      disposed = true;
      off();
      offReset();
      if (reload !== null) window.clearTimeout(reload);
    },
  };
}
