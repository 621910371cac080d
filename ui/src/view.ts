import type { LiveFeed } from './live.js';

/** A page: rendered into `root`; `dispose` stops what it listens to. */
export interface View {
  dispose(): void;
}

export interface ViewContext {
  root: HTMLElement;
  live: LiveFeed;
  dialog: HTMLDialogElement;
}
