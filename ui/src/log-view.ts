/**
 * A try's log, virtualised, so a 50 MB log opens at once and scrolls without freezing the page.
 *
 * - It opens at the tail: the live stream's first event is the file's last 64 KiB, and every
 *   later event appends what the try wrote since (the SSE id is the byte offset, so a
 *   reconnect resumes where it stopped).
 * - Only the rows on screen, plus a margin, are in the document: every row has the same
 *   height, and one sizer element stands for the rest (the viewport scrolls over it).
 * - The rows in memory are one window of the file, [startByte, endByte). Scrolling near its top
 *   reads the 256 KiB before it by byte offset; below it, while the window is not at the live
 *   end, the 256 KiB after it. The bytes outside the window are estimated as rows (bytes per row
 *   so far), so the scrollbar spans the whole file; scrolling far into that estimate, or to the
 *   very top, jumps: the window is replaced by the chunk at that point of the file. The window
 *   holds at most 100,000 rows (8M characters); past that the far end is dropped.
 * - Lines never wrap: the viewport scrolls sideways. A line longer than 2,000 characters goes
 *   on as many rows as it needs (each cut marked).
 * - Text is set as text only, with the ANSI colours (ansi.ts); the colours in force at a row's
 *   start are kept with it.
 * - Keys on the focused log: Home (first lines), End (last lines, then live); arrows and
 *   Page Up/Down scroll.
 */
import type { ApiLogChunk } from '../../src/server/api-types.js';
import { renderAnsi, type AnsiState } from './ansi.js';
import { api } from './api.js';
import { h } from './dom.js';
import { pushLine, toRows, utf8Length, wholeLines, type Row } from './log-rows.js';

/** Every row's height in px (`.log-row` in app.css says the same). */
export const ROW_HEIGHT = 18;
/** Rows rendered beyond each edge of the viewport. */
const MARGIN = 30;
/** Bytes read per step when scrolling beyond the rows in memory. */
const CHUNK_BYTES = 256 * 1024;
/** The window's caps; past one, DROP_ROWS rows (or enough characters) go from the far end. */
const MAX_ROWS = 100_000;
const MAX_CHARS = 8_000_000;
const DROP_ROWS = 20_000;
/** The estimate of the bytes outside the window, in px, at most (browsers cap an element's height near 33M px). */
const MAX_SPACER_PX = 10_000_000;

/** Where the view is: a row and how far below its top the viewport starts. */
interface Anchor {
  index: number;
  row: Row;
  dy: number;
}

/** `sub` under `.../tries/N/log` ('' | '/stream' | '/download'), with a query: the API path (no /api/v1). */
export type LogPath = (sub: string, query?: Record<string, number>) => string;

export class LogView {
  readonly el: HTMLElement;
  private readonly view: HTMLPreElement;
  private readonly sizer: HTMLElement;
  private readonly win: HTMLElement;
  private readonly status: HTMLElement;
  private readonly resize: ResizeObserver;

  private rows: Row[] = [];
  private chars = 0;
  /** The widest row, in characters (the sizer's width). */
  private cols = 0;
  private startByte = 0;
  /** The byte after the last row (after the open line while live). */
  private endByte = 0;
  /** The file's size, as last heard. */
  private size = 0;
  /** Colours after the last row. */
  private endState: AnsiState = null;
  /** While live: the unterminated last line, as raw text from `openByte`, drawn as the last `openRows` rows. */
  private openText = '';
  private openByte = 0;
  private openState: AnsiState = null;
  private openRows = 0;

  private source: EventSource | null = null;
  /** The rows reach the end of the file and the live stream appends to them. */
  private live = false;
  /** Live and scrolled to the bottom: new lines keep it there. */
  private following = true;
  private loading = false;
  private failedAt = Number.NEGATIVE_INFINITY;
  /** Bumped whenever the window is replaced: answers for an older one are dropped. */
  private generation = 0;
  private stopped = false;
  private frame = 0;
  private rendered = new Map<Row, HTMLElement>();
  private lastTop = 0;

  constructor(
    private readonly path: LogPath,
    label: string,
  ) {
    this.win = h('span', { class: 'log-window' });
    this.sizer = h('span', { class: 'log-sizer' }, this.win);
    this.view = h('pre', {
      class: 'log-view', 'data-testid': 'log', tabindex: 0, role: 'region', 'aria-label': `${label} (Home: first lines, End: last lines)`,
      onscroll: () => this.onScroll(),
      onkeydown: (e: Event) => this.onKey(e as KeyboardEvent),
    }, this.sizer);
    this.status = h('span', { class: 'muted log-status', 'data-testid': 'log-status' }, 'loading…');
    this.el = h('div', { class: 'log-box' },
      h('div', { class: 'toolbar log-tools' },
        h('strong', {}, label),
        this.status,
        h('button', { type: 'button', 'data-testid': 'log-start', title: 'the first lines (Home)', onclick: () => this.start() }, '⇤ Start'),
        h('button', { type: 'button', 'data-testid': 'log-end', title: 'the last lines, then live (End)', onclick: () => this.end() }, 'End ⇥'),
        h('a', { href: `/api/v1${path('/download')}`, download: '', 'data-testid': 'log-download' }, 'download full log'),
      ),
      this.view,
    );
    this.resize = new ResizeObserver(() => {
      if (this.following && this.live) this.toBottom();
      this.schedule();
    });
    this.resize.observe(this.view);
    this.tail();
  }

  /** The panel closed, or shows another try. */
  stop(): void {
    this.stopped = true;
    this.generation++;
    this.closeStream();
    this.resize.disconnect();
    if (this.frame !== 0) cancelAnimationFrame(this.frame);
  }

  /** Put back into the document (the panel re-rendered around it): where it was. */
  shown(): void {
    if (this.live && this.following) this.toBottom();
    else this.view.scrollTop = this.lastTop;
    this.render();
  }

  /** The first lines of the file (Home). */
  start(): void {
    this.following = false;
    if (this.startByte === 0 && !this.loading) {
      this.view.scrollTop = 0;
      this.render();
    } else void this.jumpTo(0);
  }

  /** The last lines, then live (End). */
  end(): void {
    if (this.live && !this.loading) {
      this.following = true;
      this.toBottom();
      this.render();
    } else this.tail();
  }

  // ---- reading the file -----------------------------------------------------------------

  /** A fresh window at the tail, from the live stream's first event, then live. */
  private tail(): void {
    const gen = ++this.generation;
    this.closeStream();
    this.live = false;
    this.following = true;
    this.loading = true;
    this.setStatus();
    let first = true;
    const source = new EventSource(`/api/v1${this.path('/stream')}`);
    this.source = source;
    source.addEventListener('log', (e) => {
      if (gen !== this.generation) return;
      const { data, end } = parseEvent(e);
      if (first) {
        first = false;
        this.loading = false;
        this.reset();
        const kept = wholeLines(data.text, data.offset, end, data.offset > 0, false);
        this.startByte = kept.from;
        this.openByte = kept.from;
        this.live = true;
        this.size = Math.max(data.size, end);
        this.appendLive(kept.text, end);
        this.layout();
        this.toBottom();
        this.render();
        return;
      }
      this.onLive(data, end);
    });
    source.onerror = () => {
      if (gen === this.generation && source.readyState === EventSource.CLOSED) {
        this.loading = false;
        this.setStatus('the live log stopped: End opens it again');
      }
    };
  }

  /** A live event that continues the window: appended; one that does not (the file was rewritten or cut): start again from the tail. */
  private onLive(data: { offset: number; text: string; size: number }, end: number): void {
    if (data.offset !== this.endByte) {
      this.tail();
      return;
    }
    this.size = Math.max(data.size, end);
    const anchor = this.following ? null : this.anchor();
    this.appendLive(data.text, end);
    this.afterChange(anchor, 'start');
  }

    /** Follows the file from `endByte` (the window reached its end by scrolling). */
  private followFrom(offset: number): void {
    const gen = this.generation;
    this.closeStream();
    const source = new EventSource(`/api/v1${this.path('/stream', { offset })}`);
    this.source = source;
    source.addEventListener('log', (e) => {
      if (gen !== this.generation) return;
      const { data, end } = parseEvent(e);
      this.onLive(data, end);
    });
    source.onerror = () => {
      if (gen === this.generation && source.readyState === EventSource.CLOSED) this.setStatus('the live log stopped: End opens it again');
    };
  }

  private closeStream(): void {
    this.source?.close();
    this.source = null;
  }

  private reset(): void {
    this.rows = [];
    this.rendered.clear();
    this.win.replaceChildren();
    this.chars = 0;
    this.cols = 0;
    this.openText = '';
    this.openRows = 0;
    this.openState = null;
    this.endState = null;
  }

  /** Text the live stream brought (or the tail): complete lines become rows; the unterminated end is the open line. */
  private appendLive(text: string, end: number): void {
    if (this.openRows > 0) this.forget(this.rows.splice(this.rows.length - this.openRows, this.openRows));
    const all = this.openText + text;
    const out: Row[] = [];
    let at = { byte: this.openByte, state: this.openState };
    const cut = all.lastIndexOf('\n');
    if (cut >= 0) for (const line of all.slice(0, cut).split('\n')) at = pushLine(out, line, at.byte, at.state, true);
    const rest = all.slice(cut + 1);
    const open: Row[] = [];
    pushLine(open, rest, at.byte, at.state, false);
    // A long unterminated line: every full row of it is final, only its last row stays open.
    const last = open.pop();
    out.push(...open);
    if (last === undefined) {
      this.openText = rest;
      this.openByte = at.byte;
      this.openState = at.state;
      this.openRows = 0;
    } else {
      this.openText = rest.slice(open.reduce((n, r) => n + r.text.length, 0));
      this.openByte = last.byte;
      this.openState = last.ansi;
      this.openRows = 1;
      out.push(last);
    }
    this.endState = at.state;
    this.add(out);
    this.rows.push(...out);
    this.endByte = end;
  }

  /** Replaces the window with the lines around `byte`, the view at that point. */
  private async jumpTo(byte: number): Promise<void> {
    const gen = ++this.generation;
    this.closeStream();
    this.live = false;
    this.following = false;
    this.loading = true;
    this.setStatus();
    try {
      const chunk = await api.get<ApiLogChunk>(this.path('', { offset: byte, maxBytes: CHUNK_BYTES }));
      if (gen !== this.generation) return;
      this.size = chunk.size;
      const atEnd = chunk.offset + chunk.length >= chunk.size;
      const kept = wholeLines(chunk.text, chunk.offset, chunk.offset + chunk.length, chunk.offset > 0, !atEnd);
      this.reset();
      this.startByte = kept.from;
      if (atEnd) {
        this.live = true;
        this.openByte = kept.from;
        this.appendLive(kept.text, kept.to);
        this.followFrom(kept.to);
      } else {
        const out = toRows(kept.text, kept.from, null);
        this.add(out.rows);
        this.rows = out.rows;
        this.endState = out.state;
        this.endByte = kept.to;
      }
      this.loading = false;
      this.layout();
      const index = byte === 0 ? 0 : Math.max(0, this.rows.findIndex((r) => r.byte >= byte));
      this.view.scrollTop = this.abovePx() + index * ROW_HEIGHT;
      this.render();
    } catch (err) {
      this.failed(gen, err);
    }
  }

  /** The chunk before the window. */
  private async extendUp(): Promise<void> {
    const gen = this.generation;
    this.loading = true;
    this.setStatus();
    const from = Math.max(0, this.startByte - CHUNK_BYTES);
    try {
      const chunk = await api.get<ApiLogChunk>(this.path('', { offset: from, maxBytes: this.startByte - from }));
      if (gen !== this.generation) return;
      const kept = wholeLines(chunk.text, chunk.offset, chunk.offset + chunk.length, chunk.offset > 0, false);
      const out = toRows(kept.text, kept.from, null);
      const anchor = this.anchor();
      this.add(out.rows);
      this.rows = out.rows.concat(this.rows);
      this.startByte = kept.from;
      if (anchor) anchor.index += out.rows.length;
      this.loading = false;
      this.afterChange(anchor, 'end');
    } catch (err) {
      this.failed(gen, err);
    }
  }

  /** The chunk after the window (not live); reaching the file's end, the window goes live. */
  private async extendDown(): Promise<void> {
    const gen = this.generation;
    this.loading = true;
    this.setStatus();
    try {
      const chunk = await api.get<ApiLogChunk>(this.path('', { offset: this.endByte, maxBytes: CHUNK_BYTES }));
      if (gen !== this.generation) return;
      this.size = chunk.size;
      const atEnd = chunk.offset + chunk.length >= chunk.size;
      const anchor = this.anchor();
      if (atEnd) {
        this.live = true;
        this.openByte = this.endByte;
        this.openState = this.endState;
        this.openText = '';
        this.openRows = 0;
        this.appendLive(chunk.text, chunk.offset + chunk.length);
        this.followFrom(this.endByte);
      } else {
        const kept = wholeLines(chunk.text, chunk.offset, chunk.offset + chunk.length, false, true);
        const out = toRows(kept.text, kept.from, this.endState);
        this.add(out.rows);
        this.rows.push(...out.rows);
        this.endState = out.state;
        this.endByte = kept.to;
      }
      this.loading = false;
      this.afterChange(anchor, 'start');
    } catch (err) {
      this.failed(gen, err);
    }
  }

  private failed(gen: number, err: unknown): void {
    if (gen !== this.generation) return;
    this.loading = false;
    this.failedAt = performance.now();
    this.setStatus(`could not read the log: ${(err as Error).message}`);
  }

  // ---- the window's bookkeeping -----------------------------------------------------------

  private add(rows: Row[]): void {
    for (const r of rows) {
      this.chars += r.text.length;
      if (r.text.length > this.cols) this.cols = r.text.length;
    }
  }

  private forget(rows: Row[]): void {
    for (const r of rows) {
      this.chars -= r.text.length;
      this.rendered.delete(r);
    }
  }

  /** Past a cap, rows go from `side` (the end away from the view). */
  private trim(side: 'start' | 'end'): void {
    if (this.rows.length <= MAX_ROWS && this.chars <= MAX_CHARS) return;
    let n = Math.min(this.rows.length - 1, Math.max(0, this.rows.length - MAX_ROWS + DROP_ROWS));
    if (side === 'start') {
      let chars = this.chars;
      for (let i = 0; i < n; i++) chars -= this.rows[i]!.text.length;
      while (chars > MAX_CHARS * 0.8 && n < this.rows.length - 1) chars -= this.rows[n++]!.text.length;
      this.forget(this.rows.splice(0, n));
      this.startByte = this.rows[0]!.byte;
    } else {
      let chars = this.chars;
      for (let i = 0; i < n; i++) chars -= this.rows[this.rows.length - 1 - i]!.text.length;
      while (chars > MAX_CHARS * 0.8 && n < this.rows.length - 1) chars -= this.rows[this.rows.length - 1 - n++]!.text.length;
      const dropped = this.rows.splice(this.rows.length - n, n);
      this.forget(dropped);
      this.endByte = dropped[0]!.byte;
      this.endState = dropped[0]!.ansi;
      if (this.live) {
        // The end of the file is out of the window now: stop following it.
        this.live = false;
        this.following = false;
        this.closeStream();
        this.openText = '';
        this.openRows = 0;
      }
    }
    this.cols = 0;
    for (const r of this.rows) if (r.text.length > this.cols) this.cols = r.text.length;
  }

  private afterChange(anchor: Anchor | null, trimSide: 'start' | 'end'): void {
    const before = this.rows.length;
    this.trim(trimSide);
    if (anchor && trimSide === 'start') anchor.index -= before - this.rows.length;
    this.layout();
    if (this.following && this.live) this.toBottom();
    else if (anchor) this.restore(anchor);
    this.render();
  }

  /** Bytes per row in the window: how the bytes outside it are drawn. */
  private bytesPerRow(): number {
    const n = this.rows.length;
    return n === 0 ? 100 : Math.max(1, (this.endByte - this.startByte) / n);
  }

  private abovePx(): number {
    return Math.min(MAX_SPACER_PX, Math.round(this.startByte / this.bytesPerRow()) * ROW_HEIGHT);
  }

  private belowPx(): number {
    return this.live ? 0 : Math.min(MAX_SPACER_PX, Math.round(Math.max(0, this.size - this.endByte) / this.bytesPerRow()) * ROW_HEIGHT);
  }

  private totalPx(): number {
    return this.abovePx() + this.rows.length * ROW_HEIGHT + this.belowPx();
  }

  private layout(): void {
    const height = `${this.totalPx()}px`;
    const width = `calc(${this.cols}ch + 16px)`;
    if (this.sizer.style.height !== height) this.sizer.style.height = height;
    if (this.sizer.style.width !== width) this.sizer.style.width = width;
  }

  private anchor(): Anchor | null {
    if (this.rows.length === 0) return null;
    const top = this.view.scrollTop;
    const above = this.abovePx();
    const index = Math.min(this.rows.length - 1, Math.max(0, Math.floor((top - above) / ROW_HEIGHT)));
    return { index, row: this.rows[index]!, dy: top - (above + index * ROW_HEIGHT) };
  }

  private restore(a: Anchor): void {
    let index = this.rows[a.index] === a.row ? a.index : this.rows.indexOf(a.row);
    if (index < 0) index = Math.min(this.rows.length - 1, Math.max(0, a.index));
    this.view.scrollTop = this.abovePx() + index * ROW_HEIGHT + a.dy;
    this.lastTop = this.view.scrollTop;
  }

  private toBottom(): void {
    this.view.scrollTop = this.view.scrollHeight;
    this.lastTop = this.view.scrollTop;
  }

  // ---- drawing ------------------------------------------------------------------------------

  private onScroll(): void {
    const top = this.view.scrollTop;
    // Scrolled by hand away from the bottom: stop following (back at the bottom: follow again).
    if (this.live) this.following = top + this.view.clientHeight >= this.view.scrollHeight - ROW_HEIGHT / 2;
    this.lastTop = top;
    this.schedule();
  }

  private onKey(e: KeyboardEvent): void {
    if (e.key === 'Home') this.start();
    else if (e.key === 'End') this.end();
    else return;
    e.preventDefault();
  }

  private schedule(): void {
    if (this.frame === 0 && !this.stopped) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  /** The rows on screen plus a margin, in the document; the rest only as the sizer's height. */
  private render(): void {
    if (this.stopped) return;
    this.layout();
    const top = this.view.scrollTop;
    const height = this.view.clientHeight || 320;
    const above = this.abovePx();
    const n = this.rows.length;
    const first = Math.min(n, Math.max(0, Math.floor((top - above) / ROW_HEIGHT) - MARGIN));
    const last = Math.min(n, Math.max(first, Math.ceil((top + height - above) / ROW_HEIGHT) + MARGIN));
    const next = new Map<Row, HTMLElement>();
    const els: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const row = this.rows[i]!;
      const el = this.rendered.get(row) ?? rowElement(row);
      next.set(row, el);
      els.push(el);
    }
    this.rendered = next;
    const children = this.win.children;
    if (children.length !== els.length || els.some((el, i) => children[i] !== el)) this.win.replaceChildren(...els);
    this.win.style.transform = `translateY(${above + first * ROW_HEIGHT}px)`;
    this.setStatus();
    this.check(top, height, above);
  }

  /** Near an edge of the window with more of the file beyond it: read on (or jump, when far). */
  private check(top: number, height: number, above: number): void {
    if (this.loading || this.stopped || performance.now() - this.failedAt < 2000) return;
    const rowsEnd = above + this.rows.length * ROW_HEIGHT;
    if (this.startByte > 0 && top < above + MARGIN * ROW_HEIGHT) {
      if (top === 0 || top + height < above - 2 * height) void this.jumpTo(top === 0 ? 0 : Math.floor((this.startByte * top) / Math.max(1, above)));
      else void this.extendUp();
    } else if (!this.live && top + height > rowsEnd - MARGIN * ROW_HEIGHT) {
      const below = this.belowPx();
      if (top + height >= rowsEnd + below - 1 && below > 2 * height) this.tail();
      else if (top > rowsEnd + 2 * height) void this.jumpTo(this.endByte + Math.floor(((this.size - this.endByte) * (top - rowsEnd)) / Math.max(1, below)));
      else void this.extendDown();
    }
  }

  private setStatus(message?: string): void {
    let text: string;
    if (message !== undefined) text = message;
    else if (this.loading) text = 'loading…';
    else if (this.size === 0 && this.rows.length === 0) text = this.live ? 'empty so far · live' : 'empty';
    else {
      const anchor = this.anchor();
      const at = anchor ? anchor.row.byte : this.startByte;
      const pct = this.size > 0 ? Math.min(100, Math.floor((at / this.size) * 100)) : 100;
      text = `${pct}% of ${size(this.size)}${this.live ? (this.following ? ' · live' : ' · live (End follows)') : ''}`;
    }
    if (this.status.textContent !== text) this.status.textContent = text;
    this.view.dataset.live = String(this.live);
    this.view.dataset.start = String(this.startByte);
    this.view.dataset.end = String(this.endByte);
  }
}

/** A live-log event: its data, and the byte after its text (the SSE id). */
function parseEvent(e: Event): { data: { offset: number; text: string; size: number }; end: number } {
  const m = e as MessageEvent<string>;
  const data = JSON.parse(m.data) as { offset: number; text: string; size: number };
  const id = Number(m.lastEventId);
  return { data, end: m.lastEventId !== '' && Number.isFinite(id) ? id : data.offset + utf8Length(data.text) };
}

function rowElement(row: Row): HTMLElement {
  const el = document.createElement('span');
  el.className = row.end ? 'log-row' : 'log-row cut';
  el.dataset.byte = String(row.byte);
  renderAnsi(el, row.text, row.ansi);
  if (row.end) el.append('\n');
  return el;
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}
