/**
 * ANSI colours in log text (SGR codes: `ESC[31m` ... `ESC[0m`) as spans with classes; every
 * other escape sequence is dropped. Text is only ever set as text.
 *
 * The log viewer renders one row at a time (only the rows on screen exist), so the colour in
 * force where a row starts is kept with the row: `ansiAfter` carries it from row to row, and
 * `renderAnsi` draws one row from it. A sequence cut at the end of a row is dropped from it.
 */
/* eslint-disable no-control-regex -- ANSI escape sequences begin with ESC (\x1b) */
const SGR = /\x1b\[([0-9;]*)m/g;
const OTHER = /\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b[()][A-Z0-9]|\x1b[=>]/g;
const CUT = /\x1b(\[[0-9;?]*)?$/;

/** The colours in force; null: none (plain text). Never mutated: rows share them. */
export type AnsiState = Readonly<{ fg: string | null; bg: string | null; bold: boolean }> | null;

function clean(text: string): string {
  return text.replace(OTHER, '').replace(CUT, '');
}

function apply(state: AnsiState, codes: string): AnsiState {
  let fg = state?.fg ?? null;
  let bg = state?.bg ?? null;
  let bold = state?.bold ?? false;
  for (const code of (codes === '' ? '0' : codes).split(';').map(Number)) {
    if (code === 0) [fg, bg, bold] = [null, null, false];
    else if (code === 1) bold = true;
    else if (code === 22) bold = false;
    else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) fg = `ansi-fg-${code}`;
    else if (code === 39) fg = null;
    else if ((code >= 40 && code <= 47) || (code >= 100 && code <= 107)) bg = `ansi-bg-${code}`;
    else if (code === 49) bg = null;
  }
  if (fg === null && bg === null && !bold) return null;
  if (state !== null && state.fg === fg && state.bg === bg && state.bold === bold) return state;
  return { fg, bg, bold };
}

/** The colours in force after `text`, starting from `state`. */
export function ansiAfter(state: AnsiState, text: string): AnsiState {
  if (!text.includes('\x1b')) return state;
  for (const m of clean(text).matchAll(SGR)) state = apply(state, m[1] ?? '');
  return state;
}

/** Appends `text` to `target` as text nodes and coloured spans, starting in colours `state`. */
export function renderAnsi(target: HTMLElement, text: string, state: AnsiState): void {
  if (!text.includes('\x1b')) {
    emit(target, text, state);
    return;
  }
  text = clean(text);
  let last = 0;
  for (const m of text.matchAll(SGR)) {
    emit(target, text.slice(last, m.index), state);
    state = apply(state, m[1] ?? '');
    last = m.index + m[0].length;
  }
  emit(target, text.slice(last), state);
}

function emit(target: HTMLElement, text: string, state: AnsiState): void {
  if (text === '') return;
  if (state === null) {
    target.append(document.createTextNode(text));
    return;
  }
  const span = document.createElement('span');
  span.className = [state.fg, state.bg, state.bold ? 'ansi-bold' : null].filter((c): c is string => c !== null).join(' ');
  span.textContent = text;
  target.append(span);
}
