/**
 * ANSI colours in log text (SGR codes: `ESC[31m` ... `ESC[0m`) as spans with classes; every
 * other escape sequence is dropped. Text is only ever set as text. A sequence cut at a chunk
 * edge waits for the next chunk.
 */
/* eslint-disable no-control-regex -- ANSI escape sequences begin with ESC (\x1b) */
const SGR = /\x1b\[([0-9;]*)m/g;
const OTHER = /\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b[()][A-Z0-9]|\x1b[=>]/g;

export class AnsiText {
  private fg: string | null = null;
  private bg: string | null = null;
  private bold = false;
  private pending = '';

  append(target: HTMLElement, chunk: string): void {
    let text = (this.pending + chunk).replace(OTHER, '');
    this.pending = '';
    const cut = /\x1b(\[[0-9;?]*)?$/.exec(text);
    if (cut) {
      this.pending = cut[0];
      text = text.slice(0, cut.index);
    }
    let last = 0;
    for (const m of text.matchAll(SGR)) {
      this.emit(target, text.slice(last, m.index));
      this.apply(m[1] ?? '');
      last = m.index! + m[0].length;
    }
    this.emit(target, text.slice(last));
  }

  private emit(target: HTMLElement, text: string): void {
    if (text === '') return;
    const classes = [this.fg, this.bg, this.bold ? 'ansi-bold' : null].filter((c): c is string => c !== null);
    if (classes.length === 0) {
      target.append(document.createTextNode(text));
      return;
    }
    const span = document.createElement('span');
    span.className = classes.join(' ');
    span.textContent = text;
    target.append(span);
  }

  private apply(codes: string): void {
    for (const code of (codes === '' ? '0' : codes).split(';').map(Number)) {
      if (code === 0) [this.fg, this.bg, this.bold] = [null, null, false];
      else if (code === 1) this.bold = true;
      else if (code === 22) this.bold = false;
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) this.fg = `ansi-fg-${code}`;
      else if (code === 39) this.fg = null;
      else if ((code >= 40 && code <= 47) || (code >= 100 && code <= 107)) this.bg = `ansi-bg-${code}`;
      else if (code === 49) this.bg = null;
    }
  }
}
