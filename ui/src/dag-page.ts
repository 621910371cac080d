/**
 * A DAG's page: the grid of runs x tasks (newest run on the left), coloured by state, patched
 * cell by cell from the change feed. The grid is read once (and again only on a feed reset,
 * or for older pages on request); it is never re-read on a timer. A new run from the feed
 * gets a new column of `none` cells at once: its task instances' own events follow in order.
 *
 * A mapped task's instances in a run are one collapsed cell: a bar of state colours and
 * `successful/all`. The first feed event of one of its instances reads which instance is in
 * which state once (instances/by-state, with the feed position it was read at); from then on
 * each event moves one instance between counts, exactly, with nothing read again.
 */
import type { ApiChangeEvent, ApiDag, ApiGrid, ApiGridCell, ApiGridMappedCell, ApiInstanceStates, TiState } from '../../src/server/api-types.js';
import { api, enc } from './api.js';
import { triggerDialog } from './dialogs.js';
import { append, clear, h } from './dom.js';
import { GraphView } from './graph-view.js';
import { aggregateState, describeCounts, fillBar, progress, total, type Counts } from './instances.js';
import { RunsTable } from './runs-table.js';
import { TaskPanel } from './task-panel.js';
import type { View, ViewContext } from './view.js';

const STATES: TiState[] = ['none', 'scheduled', 'queued', 'running', 'success', 'failed', 'up_for_retry', 'up_for_reschedule', 'skipped', 'upstream_failed', 'removed'];

/** A collapsed cell of a mapped task's instances in one run. */
interface MappedCell {
  el: HTMLButtonElement;
  bar: HTMLElement;
  label: HTMLElement;
  counts: Counts;
  /** Each instance's state, once read (null before the first event of one of them). */
  known: Map<number, TiState> | null;
  loading: boolean;
  /** Events that came while `known` was being read. */
  buffer: ApiChangeEvent[];
}

type CellData = Pick<ApiGridCell, 'state' | 'tryNumber'> & Partial<Pick<ApiGridMappedCell, 'mapped' | 'states'>>;

export function dagPage({ root, live, dialog }: ViewContext, dagId: string): View {
  let disposed = false;
  let dag: ApiDag | null = null;
  let tasks: string[] = [];
  /** Run ids in column order. */
  let runs: string[] = [];
  let nextCursor: string | null = null;
  const cells = new Map<string, HTMLButtonElement>();
  const mappedCells = new Map<string, MappedCell>();
  const runBars = new Map<string, HTMLElement>();
  const rows = new Map<string, HTMLTableRowElement>();
  const headRow = h('tr', {}, h('th', {}));
  const body = h('tbody', {});
  const table = h('table', { class: 'grid', 'data-testid': 'grid' }, h('thead', {}, headRow), body);
  const older = h('button', { type: 'button', 'data-testid': 'older-runs', hidden: true, onclick: () => void loadPage(nextCursor) }, 'Older runs');
  const panel = new TaskPanel(dagId, dialog, () => select(null));
  // Keyboard: arrows move between cells (Enter or Space opens one, as a button does).
  table.addEventListener('keydown', (e) => {
    const cell = e.target as HTMLElement;
    if (!cell.classList.contains('cell')) return;
    const td = cell.parentElement as HTMLTableCellElement;
    const row = td.parentElement as HTMLTableRowElement;
    let next: Element | null | undefined;
    if (e.key === 'ArrowLeft') next = td.previousElementSibling;
    else if (e.key === 'ArrowRight') next = td.nextElementSibling;
    else if (e.key === 'ArrowUp') next = row.previousElementSibling?.children[td.cellIndex];
    else if (e.key === 'ArrowDown') next = row.nextElementSibling?.children[td.cellIndex];
    else return;
    const target = next?.querySelector<HTMLButtonElement>('.cell');
    if (target) {
      e.preventDefault();
      target.focus();
    }
  });
  const gridBox = h('div', {}, table, older);
  const view = h('div', { class: 'grid-wrap' }, gridBox);
  const layout = h('div', { class: 'layout' }, view);
  let selected: HTMLButtonElement | null = null;
  // The graph shows one run: the selected cell's, else the newest (and follows new runs until a cell is picked).
  let graph: GraphView | null = null;
  let graphRun: string | null = null;
  let graphPinned = false;
  const runsTable = new RunsTable(dagId);
  const stateOf = (taskId: string) => (graphRun === null ? undefined : cells.get(key(graphRun, taskId))?.dataset.state);
  const tabs = (['grid', 'graph', 'runs'] as const).map((name) =>
    h('button', { type: 'button', role: 'tab', 'data-testid': `tab-${name}`, 'aria-selected': name === 'grid' ? 'true' : 'false', onclick: () => showTab(name) }, name[0]!.toUpperCase() + name.slice(1)),
  );
  const showTab = (name: 'grid' | 'graph' | 'runs') => {
    tabs.forEach((t) => t.setAttribute('aria-selected', t.dataset.testid === `tab-${name}` ? 'true' : 'false'));
    if (name === 'grid') view.replaceChildren(gridBox);
    else if (name === 'graph') {
      graph ??= new GraphView(dag!, (taskId) => {
        const cell = graphRun === null ? undefined : cells.get(key(graphRun, taskId));
        if (cell) select(cell);
      });
      graphRun ??= runs[0] ?? null;
      graph.show(graphRun, stateOf);
      view.replaceChildren(graph.el);
    } else {
      view.replaceChildren(runsTable.el);
      void runsTable.load().catch((err: Error) => window.alert(err.message));
    }
  };

  const key = (runId: string, taskId: string) => `${runId}\0${taskId}`;

  const select = (cell: HTMLButtonElement | null) => {
    selected?.classList.remove('selected');
    selected = cell;
    if (cell === null) {
      panel.close();
      return;
    }
    cell.classList.add('selected');
    graphRun = cell.dataset.run!;
    graphPinned = true;
    graph?.show(graphRun, stateOf);
    if (!panel.el.isConnected) layout.append(panel.el);
    const k = key(cell.dataset.run!, cell.dataset.task!);
    const opened = mappedCells.has(k)
      ? panel.openMapped(cell.dataset.run!, cell.dataset.task!, () => mappedCells.get(k)?.counts ?? {})
      : panel.open(cell.dataset.run!, cell.dataset.task!);
    void opened.catch((err: Error) => window.alert(err.message));
  };

  const makeCell = (runId: string, taskId: string, state: TiState, tryNumber: number) => {
    const cell = h('button', { type: 'button', class: `cell st-${state}`, 'data-run': runId, 'data-task': taskId, 'data-state': state, title: `${taskId} · ${runId}: ${state} (try ${tryNumber})`, 'aria-label': `${taskId} in ${runId}: ${state}` });
    cell.addEventListener('click', () => select(cell));
    cells.set(key(runId, taskId), cell);
    return cell;
  };

  /** A mapped task's cell: its instances' counts as a bar and `successful/all`. */
  const makeMappedCell = (runId: string, taskId: string, counts: Counts) => {
    const bar = h('span', { class: 'bar' });
    const label = h('span', { class: 'count', 'data-testid': 'map-count' });
    const el = h('button', { type: 'button', class: 'cell mapped', 'data-run': runId, 'data-task': taskId, 'data-mapped': 'true' }, bar, label);
    el.addEventListener('click', () => select(el));
    const m: MappedCell = { el, bar, label, counts: { ...counts }, known: null, loading: false, buffer: [] };
    cells.set(key(runId, taskId), el);
    mappedCells.set(key(runId, taskId), m);
    drawMapped(m);
    return m;
  };

  const drawMapped = (m: MappedCell) => {
    const state = aggregateState(m.counts);
    m.el.className = `cell mapped st-${state}${m.el === selected ? ' selected' : ''}`;
    m.el.dataset.state = state;
    m.el.dataset.count = String(total(m.counts));
    m.el.dataset.success = String(m.counts.success ?? 0);
    fillBar(m.bar, m.counts, 'height');
    m.label.textContent = progress(m.counts);
    const text = `${m.el.dataset.task} · ${m.el.dataset.run}: ${total(m.counts)} mapped instances, ${describeCounts(m.counts) || 'none yet'}`;
    m.el.title = text;
    m.el.setAttribute('aria-label', text);
  };

  /** Moves one instance to its new state (its old one known): exact, idempotent. */
  const applyMapped = (m: MappedCell, e: ApiChangeEvent) => {
    const i = e.mapIndex!;
    const before = m.known!.get(i);
    const after = e.state as TiState;
    if (before === after) return;
    if (before !== undefined && (m.counts[before] ?? 0) > 0) m.counts[before]! -= 1;
    if (before !== undefined && m.counts[before] === 0) delete m.counts[before];
    m.counts[after] = (m.counts[after] ?? 0) + 1;
    m.known!.set(i, after);
  };

  /** Reads which instance is in which state, then applies the events that came after the position it was read at. */
  const loadMapped = (m: MappedCell) => {
    m.loading = true;
    const { run, task } = m.el.dataset;
    void api.get<ApiInstanceStates>(`/dags/${enc(dagId)}/runs/${enc(run!)}/tasks/${enc(task!)}/instances/by-state`).then(
      (snap) => {
        m.loading = false;
        if (disposed || mappedCells.get(key(run!, task!)) !== m) return;
        m.known = new Map();
        m.counts = {};
        for (const [state, indexes] of Object.entries(snap.mapIndexes) as Array<[TiState, number[]]>) {
          for (const i of indexes) if (i >= 0) m.known.set(i, state);
          const n = indexes.filter((i) => i >= 0).length;
          if (n > 0) m.counts[state] = n;
        }
        for (const e of m.buffer) if (e.id > snap.feedPosition) applyMapped(m, e);
        m.buffer = [];
        mappedUpdated(m);
      },
      () => {
        m.loading = false; // the next event tries again
      },
    );
  };

  const mappedUpdated = (m: MappedCell) => {
    drawMapped(m);
    if (m.el.dataset.run === graphRun) graph?.setState(m.el.dataset.task!, m.el.dataset.state!);
    panel.countsChanged(m.el.dataset.run!, m.el.dataset.task!);
  };

  /** An event of a mapped instance: the collapsed cell (made now if the grid showed the task unexpanded) moves it between counts. */
  const onMappedEvent = (e: ApiChangeEvent) => {
    const k = key(e.runId, e.taskId!);
    let m = mappedCells.get(k);
    if (m === undefined) {
      if (!runBars.has(e.runId)) return; // a run this page does not show
      const old = cells.get(k);
      const td = old?.parentElement ?? [...taskRow(e.taskId!).children].find((c) => (c as HTMLElement).dataset.run === e.runId);
      if (td === undefined) return;
      const wasSelected = old !== undefined && old === selected;
      m = makeMappedCell(e.runId, e.taskId!, {});
      td.replaceChildren(m.el);
      if (wasSelected) select(m.el);
    }
    if (m.known === null) {
      m.buffer.push(e);
      if (!m.loading) loadMapped(m);
    } else {
      applyMapped(m, e);
      mappedUpdated(m);
    }
    panel.mappedChanged(e);
    const open = panel.key;
    if (open && !open.list && open.runId === e.runId && open.taskId === e.taskId && open.mapIndex === e.mapIndex) void panel.refresh().catch(() => {});
  };

  const setCell = (cell: HTMLButtonElement, state: string, tryNumber: number | null) => {
    cell.className = `cell st-${state}${cell === selected ? ' selected' : ''}`;
    cell.dataset.state = state;
    cell.title = `${cell.dataset.task} · ${cell.dataset.run}: ${state}${tryNumber === null ? '' : ` (try ${tryNumber})`}`;
    cell.setAttribute('aria-label', `${cell.dataset.task} in ${cell.dataset.run}: ${state}`);
  };

  const taskRow = (taskId: string) => {
    let row = rows.get(taskId);
    if (row === undefined) {
      row = h('tr', { 'data-task': taskId }, h('th', { class: 'task', scope: 'row' }, taskId));
      rows.set(taskId, row);
      body.append(row);
      tasks.push(taskId);
      // Columns already shown get an empty place in the new row.
      for (const runId of runs) row.append(h('td', { 'data-run': runId }));
    }
    return row;
  };

  const runHeader = (runId: string, state: string) => {
    const bar = h('span', { class: `run-state st-${state}`, 'data-testid': `run-state-${runId}`, 'data-state': state, title: `${runId}: ${state}` });
    runBars.set(runId, bar);
    // The label drops the run type prefix (manual__, scheduled__, backfill__); the title keeps the whole id.
    return h('th', { class: 'run', 'data-run': runId, title: runId }, bar, runId.replace(/^(manual|scheduled|backfill)__/, ''));
  };

  /** Adds a run's column: at the left for a new run, at the right for an older page. */
  const addColumn = (runId: string, state: string, states: Map<string, CellData>, where: 'left' | 'right') => {
    const th = runHeader(runId, state);
    if (where === 'left') headRow.children[0]!.after(th);
    else headRow.append(th);
    for (const taskId of tasks) {
      const row = rows.get(taskId)!;
      const s = states.get(taskId);
      const cell = s === undefined ? null : s.mapped ? makeMappedCell(runId, taskId, s.states ?? {}).el : makeCell(runId, taskId, s.state, s.tryNumber);
      const td = h('td', { 'data-run': runId }, cell);
      if (where === 'left') row.children[0]!.after(td);
      else row.append(td);
    }
    if (where === 'left') runs.unshift(runId);
    else runs.push(runId);
  };

  const loadPage = async (before: string | null) => {
    const grid = await api.get<ApiGrid>(`/dags/${enc(dagId)}/grid?limit=100${before ? `&before=${enc(before)}` : ''}`);
    if (disposed) return;
    for (const t of grid.tasks) taskRow(t);
    const byRun = grid.runs.map(() => new Map<string, CellData>());
    for (const c of grid.cells) byRun[c.run]!.set(grid.tasks[c.task]!, c);
    grid.runs.forEach((r, i) => {
      if (!runBars.has(r.runId)) addColumn(r.runId, r.state, byRun[i]!, 'right');
    });
    nextCursor = grid.nextCursor;
    older.hidden = nextCursor === null;
  };

  const onChange = (e: ApiChangeEvent) => {
    if (e.dagId !== dagId) return;
    runsTable.onEvent(e);
    if (e.kind === 'run') {
      const bar = runBars.get(e.runId);
      if (bar) {
        bar.className = `run-state st-${e.state}`;
        bar.dataset.state = e.state;
        bar.title = `${e.runId}: ${e.state}`;
      } else if (e.state === 'queued') {
        addColumn(e.runId, e.state, new Map(tasks.map((t) => [t, { state: 'none' as TiState, tryNumber: 0 }])), 'left');
        if (!graphPinned) {
          graphRun = e.runId;
          graph?.show(graphRun, stateOf);
        }
      }
      return;
    }
    const taskId = e.taskId!;
    if ((e.mapIndex ?? -1) >= 0) {
      onMappedEvent(e);
      return;
    }
    // An unexpanded placeholder's event that comes after its instances: they stand for the task now.
    if (mappedCells.has(key(e.runId, taskId))) return;
    let cell = cells.get(key(e.runId, taskId));
    if (cell === undefined && runBars.has(e.runId)) {
      // A task this grid had no row (or no cell) for: a newer DAG version.
      const row = taskRow(taskId);
      const td = [...row.children].find((c) => (c as HTMLElement).dataset.run === e.runId)!;
      cell = makeCell(e.runId, taskId, e.state as TiState, e.tryNumber ?? 0);
      td.append(cell);
    }
    if (cell === undefined) return;
    setCell(cell, e.state, e.tryNumber);
    if (e.runId === graphRun) graph?.setState(taskId, e.state);
    const open = panel.key;
    if (open && !open.list && open.runId === e.runId && open.taskId === taskId && open.mapIndex < 0) void panel.refresh().catch(() => {});
  };

  const load = async () => {
    try {
      dag = await api.get<ApiDag>(`/dags/${enc(dagId)}`);
      if (disposed) return;
      clear(root);
      const paused = h('input', {
        type: 'checkbox', checked: !dag.paused, 'aria-label': 'active (unpaused)',
        onchange: async (e: Event) => {
          const box = e.target as HTMLInputElement;
          await api.post(`/dags/${enc(dagId)}/${box.checked ? 'unpause' : 'pause'}`).catch((err: Error) => window.alert(err.message));
        },
      });
      append(
        root,
        h('div', { class: 'toolbar' },
          h('h1', {}, dag.dagId),
          h('label', {}, paused, ' active'),
          h('span', { class: 'muted' }, dag.schedule ?? 'manual runs only'),
          h('button', { type: 'button', class: 'primary', 'data-testid': 'trigger', onclick: () => void triggerDialog(dialog, dag!) }, 'Trigger'),
        ),
        dag.description ? h('p', { class: 'muted' }, dag.description) : null,
        h('div', { class: 'view-tabs', role: 'tablist' }, ...tabs),
        layout,
        h('div', { class: 'legend' }, ...STATES.map((s) => h('span', {}, h('span', { class: `dot st-${s}` }), s))),
      );
      await loadPage(null);
    } catch (err) {
      if (!disposed) root.replaceChildren(h('pre', { class: 'error' }, (err as Error).message));
    }
  };

  const reset = () => {
    select(null);
    cells.clear();
    mappedCells.clear();
    runBars.clear();
    rows.clear();
    tasks = [];
    runs = [];
    clear(body);
    headRow.replaceChildren(h('th', {}));
    graphPinned = false;
    void loadPage(null).then(() => {
      graphRun = runs[0] ?? null;
      graph?.show(graphRun, stateOf);
    });
  };

  const offChange = live.onChange(onChange);
  const offReset = live.onReset(reset);
  void load();
  return {
    dispose() {
      disposed = true;
      offChange();
      offReset();
      panel.close();
    },
  };
}
