/**
 * The DAG as a graph, coloured by one run's task states: tasks in columns by depth (the
 * longest path from a root), edges as curves. Text is SVG text nodes (textContent), never markup.
 */
import type { ApiDag } from '../../src/server/api-types.js';
import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 150;
const NODE_H = 28;
const GAP_X = 56;
const GAP_Y = 14;

export class GraphView {
  readonly el = h('div', { class: 'graph', 'data-testid': 'graph' });
  private readonly nodes = new Map<string, SVGRectElement>();
  private readonly caption = h('div', { class: 'muted' });

  constructor(dag: ApiDag, onSelect: (taskId: string) => void) {
    const depth = new Map<string, number>();
    const byId = new Map(dag.tasks.map((t) => [t.taskId, t]));
    const depthOf = (id: string, seen = new Set<string>()): number => {
      const known = depth.get(id);
      if (known !== undefined) return known;
      if (seen.has(id)) return 0; // a cycle cannot be imported; be safe anyway
      seen.add(id);
      const ups = byId.get(id)?.upstream ?? [];
      const d = ups.length === 0 ? 0 : 1 + Math.max(...ups.map((u) => depthOf(u, seen)));
      depth.set(id, d);
      return d;
    };
    const columns: string[][] = [];
    for (const t of dag.tasks) (columns[depthOf(t.taskId)] ??= []).push(t.taskId);
    const pos = new Map<string, { x: number; y: number }>();
    columns.forEach((col, c) => col.forEach((id, r) => pos.set(id, { x: 4 + c * (NODE_W + GAP_X), y: 4 + r * (NODE_H + GAP_Y) })));
    const width = 8 + columns.length * (NODE_W + GAP_X) - GAP_X;
    const height = 8 + Math.max(...columns.map((c) => c.length)) * (NODE_H + GAP_Y) - GAP_Y;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('width', String(width));
    svg.setAttribute('height', String(height));
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `graph of ${dag.dagId}`);
    for (const e of dag.edges) {
      const a = pos.get(e.from);
      const b = pos.get(e.to);
      if (!a || !b) continue;
      const path = document.createElementNS(SVG, 'path');
      const x1 = a.x + NODE_W;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x;
      const y2 = b.y + NODE_H / 2;
      path.setAttribute('d', `M${x1},${y1} C${x1 + GAP_X / 2},${y1} ${x2 - GAP_X / 2},${y2} ${x2},${y2}`);
      path.setAttribute('class', 'edge');
      svg.append(path);
    }
    for (const [id, p] of pos) {
      const g = document.createElementNS(SVG, 'g');
      g.setAttribute('class', 'node');
      g.setAttribute('tabindex', '0');
      g.setAttribute('data-task', id);
      const rect = document.createElementNS(SVG, 'rect');
      rect.setAttribute('x', String(p.x));
      rect.setAttribute('y', String(p.y));
      rect.setAttribute('width', String(NODE_W));
      rect.setAttribute('height', String(NODE_H));
      rect.setAttribute('rx', '4');
      rect.setAttribute('class', 'st-none');
      const text = document.createElementNS(SVG, 'text');
      text.setAttribute('x', String(p.x + 8));
      text.setAttribute('y', String(p.y + NODE_H / 2 + 4));
      text.textContent = id.length > 20 ? `${id.slice(0, 19)}…` : id;
      const title = document.createElementNS(SVG, 'title');
      title.textContent = id;
      g.append(rect, text, title);
      g.addEventListener('click', () => onSelect(id));
      g.addEventListener('keydown', (e) => {
        if ((e as KeyboardEvent).key === 'Enter') onSelect(id);
      });
      this.nodes.set(id, rect);
      svg.append(g);
    }
    this.el.append(this.caption, svg);
  }

  /** Shows `runId`'s states (null: no run yet). */
  show(runId: string | null, stateOf: (taskId: string) => string | undefined): void {
    this.caption.textContent = runId === null ? 'no runs yet' : `states of run ${runId}`;
    for (const [id, rect] of this.nodes) this.setState(id, (runId === null ? undefined : stateOf(id)) ?? 'none', rect);
  }

  setState(taskId: string, state: string, rect = this.nodes.get(taskId)): void {
    if (!rect) return;
    rect.setAttribute('class', `st-${state}`);
    rect.parentElement?.setAttribute('data-state', state);
  }
}
