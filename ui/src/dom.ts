/** A tiny DOM builder. Text is always set as text (createTextNode): nothing from the API is ever parsed as HTML. */
export type Child = Node | string | number | null | undefined | false;
type Attr = string | number | boolean | undefined | null | ((event: Event) => void);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, Attr> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, '').toLowerCase(), value);
    else if (name === 'class') el.className = String(value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function time(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '-' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

const SVG = 'http://www.w3.org/2000/svg';

/** A small line of `values` (oldest first; null: no value), with a dot on the last one. */
export function sparkline(values: Array<number | null>, label: string, width = 220, height = 36): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.classList.add('sparkline');
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return svg;
  const max = Math.max(...known);
  const min = Math.min(...known);
  const step = values.length > 1 ? (width - 6) / (values.length - 1) : 0;
  const y = (v: number) => height - 3 - (max === min ? (height - 6) / 2 : ((v - min) / (max - min)) * (height - 6));
  const points = values.flatMap((v, i) => (v === null ? [] : [`${(3 + i * step).toFixed(1)},${y(v).toFixed(1)}`]));
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points.join(' '));
  svg.append(line);
  const last = points[points.length - 1]!.split(',');
  const dot = document.createElementNS(SVG, 'circle');
  dot.setAttribute('cx', last[0]!);
  dot.setAttribute('cy', last[1]!);
  dot.setAttribute('r', '2.5');
  svg.append(dot);
  const title = document.createElementNS(SVG, 'title');
  title.textContent = label;
  svg.append(title);
  return svg;
}
