/** kiln's web UI: a hash-routed single page over /api/v1 and its event stream. */
import { dagPage } from './dag-page.js';
import { dagsPage } from './dags-page.js';
import { LiveFeed } from './live.js';
import { poolsPage } from './pools-page.js';
import type { View, ViewContext } from './view.js';

const root = document.getElementById('app')!;
const dialog = document.getElementById('dialog') as HTMLDialogElement;
const live = new LiveFeed(document.getElementById('connection')!);
const ctx: ViewContext = { root, live, dialog };
let view: View | null = null;

function route(): void {
  view?.dispose();
  root.replaceChildren();
  const hash = location.hash.replace(/^#/, '') || '/';
  const dag = /^\/dags\/([^/]+)$/.exec(hash);
  if (dag) view = dagPage(ctx, decodeURIComponent(dag[1]!));
  else if (hash === '/pools') view = poolsPage(ctx);
  else view = dagsPage(ctx);
}

window.addEventListener('hashchange', route);
live.start();
route();
