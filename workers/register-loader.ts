import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoaderHookData } from './loader-hooks.js';

let registered = false;

/**
 * Installs the DAG loader hooks in this thread, once. Costs ~30 ms (Node starts its hooks
 * thread), which is why runners do it at start-up, never per task.
 */
export function registerDagLoader(): void {
  if (registered) return;
  registered = true;
  const data: LoaderHookData = {
    kilnUrl: new URL('../src/index.js', import.meta.url).href,
    cacheDir: process.env.KILN_TS_CACHE_DIR ?? join(tmpdir(), `kiln-ts-cache-${process.getuid?.() ?? 'u'}`),
  };
  register(new URL('./loader-hooks.js', import.meta.url), { data });
}
