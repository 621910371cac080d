/**
 * Headless Chromium for the web UI's browser tests: Debian's /usr/bin/chromium driven by
 * playwright-core (nothing here downloads a browser; CI installs the package: .ci/run).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * As root Chromium needs --no-sandbox; the rest keep it from retrying blocked network
 * connections (updates, sync, first-run pages) at every start on a machine without internet.
 */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Whether Chromium is here; when not, a visible notice says which tests (`what`) are skipped. */
export function chromiumAvailable(what: string): boolean {
  const found = existsSync(CHROMIUM);
  if (!found) console.warn(`${CHROMIUM} not found: skipping ${what} (apt-get install chromium)`);
  return found;
}

export interface UiPageOptions {
  viewport: { width: number; height: number };
  /** Every request the page makes is pushed here as `METHOD /path` (plus `?query` unless withQuery is false). */
  requests?: string[];
  withQuery?: boolean;
}

/**
 * A browser and one page. A window.alert would mean the UI hit an error: it is dismissed, so
 * the test fails by timing out on what it waits for, visibly, rather than hanging on a dialog.
 */
export async function openUiPage(o: UiPageOptions): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: o.viewport });
  const requests = o.requests;
  if (requests !== undefined) {
    page.on('request', (r) => {
      const u = new URL(r.url());
      requests.push(`${r.method()} ${u.pathname}${o.withQuery === false ? '' : u.search}`);
    });
  }
  page.on('dialog', (d) => void d.dismiss());
  return { browser, page };
}
