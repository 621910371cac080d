/**
 * A log's bytes as rows (log-view.ts draws them): whole lines of a chunk read at a byte offset,
 * long lines cut into rows that split neither a character nor an escape sequence, UTF-8 byte
 * counts, and the ANSI colours in force where each row starts. Pure: no DOM.
 */
import { ansiAfter, type AnsiState } from './ansi.js';

/** A longer line goes on over several rows. */
const MAX_ROW_CHARS = 2000;

/** One rendered row: a line, or a piece of a long one. `byte`: its offset in the file. */
export interface Row {
  readonly text: string;
  /** The row ends its line (its text node gets the '\n', so the log's text is the file's). */
  readonly end: boolean;
  readonly byte: number;
  /** The colours in force where the row starts. */
  readonly ansi: AnsiState;
}

/**
 * The whole lines of a chunk of bytes [offset, end): without the line cut at its start
 * (`cutHead`) and at its end (`cutTail`), and where the kept text starts and ends in the file. A
 * chunk inside one long line is kept whole. Byte offsets are counted from a side known to be on
 * a character boundary: a chunk cut inside a character starts with one U+FFFD per byte.
 */
export function wholeLines(text: string, offset: number, end: number, cutHead: boolean, cutTail: boolean): { text: string; from: number; to: number } {
  let a = 0;
  let b = text.length;
  if (cutHead) {
    const i = text.indexOf('\n');
    if (i >= 0 && i < text.length - 1) a = i + 1;
  }
  if (cutTail) {
    const j = text.lastIndexOf('\n');
    if (j >= a && j + 1 < text.length) b = j + 1;
  }
  const from = a === 0 ? offset : offset + cutHeadBytes(text.slice(0, a));
  const to = b === text.length ? end : from + utf8Length(text.slice(a, b));
  return { text: text.slice(a, b), from, to };
}

/** Rows of `text`, which starts a row at `byte` in colours `state`; an unterminated last line becomes rows too. */
export function toRows(text: string, byte: number, state: AnsiState): { rows: Row[]; state: AnsiState } {
  const rows: Row[] = [];
  let at = { byte, state };
  const lines = text.split('\n');
  const rest = lines.pop()!;
  for (const line of lines) at = pushLine(rows, line, at.byte, at.state, true);
  at = pushLine(rows, rest, at.byte, at.state, false);
  return { rows, state: at.state };
}

/** One line as rows of at most MAX_ROW_CHARS (a trailing CR not drawn); returns the byte and colours after it. */
export function pushLine(out: Row[], line: string, byte: number, state: AnsiState, terminated: boolean): { byte: number; state: AnsiState } {
  let text = line;
  let extra = terminated ? 1 : 0;
  if (text.endsWith('\r')) {
    text = text.slice(0, -1);
    extra += 1;
  }
  if (text === '') {
    if (terminated) out.push({ text: '', end: true, byte, ansi: state });
    return { byte: byte + extra, state };
  }
  for (let i = 0; i < text.length; ) {
    const j = i + MAX_ROW_CHARS >= text.length ? text.length : safeCut(text, i, i + MAX_ROW_CHARS);
    const piece = text.slice(i, j);
    const last = j >= text.length;
    out.push({ text: piece, end: last && terminated, byte, ansi: state });
    byte += utf8Length(piece) + (last ? extra : 0);
    state = ansiAfter(state, piece);
    i = j;
  }
  return { byte, state };
}

/** A cut at `j` that splits neither a surrogate pair nor an escape sequence. */
function safeCut(s: string, i: number, j: number): number {
  const esc = s.lastIndexOf('\x1b', j - 1);
  if (esc > i && j - esc < 32) {
    const seq = s.slice(esc, j);
    // eslint-disable-next-line no-control-regex -- an escape sequence complete within the row stays in it
    if (!/^\x1b(\[[0-9;?]*[A-Za-z]|[()][A-Z0-9]|[=>])/.test(seq)) j = esc;
  }
  const c = s.charCodeAt(j - 1);
  if (c >= 0xd800 && c <= 0xdbff && j - 1 > i) j -= 1;
  return j;
}

/** Bytes of `s` in UTF-8. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 2;
      i++;
    } else n += 2;
  }
  return n;
}

/** Bytes of a chunk's first, cut line: its leading U+FFFD (at most 3) stand for one byte each, the tail of a character cut off. */
function cutHeadBytes(s: string): number {
  let k = 0;
  while (k < 3 && s.charCodeAt(k) === 0xfffd) k++;
  return k + utf8Length(s.slice(k));
}
