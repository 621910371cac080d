/**
 * The browser app's built files (ui/, bundled by esbuild at `npm run build` into dist/ui/),
 * served as they are. Only these few names are served: nothing else of the disk is reachable.
 */
import { readFile } from 'node:fs/promises';
import type { Context } from 'hono';

/** dist/src/server/static.js -> dist/ui/ */
export const DEFAULT_UI_DIR = new URL('../../ui/', import.meta.url);

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** No inline script or style, nothing from elsewhere: a `<script>` in a log line could not run even if it were HTML. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function uiFiles(dir: URL = DEFAULT_UI_DIR) {
  const cache = new Map<string, Buffer>();
  return async (c: Context, name: string): Promise<Response> => {
    const type = FILES[name];
    if (type === undefined) return c.notFound();
    let body = cache.get(name);
    if (body === undefined) {
      try {
        body = await readFile(new URL(name, dir));
      } catch {
        return c.text(`the web UI is not built (${new URL(name, dir).pathname} is missing): run \`npm run build\``, 404);
      }
      cache.set(name, body);
    }
    return c.body(new Uint8Array(body), 200, { 'content-type': type, 'cache-control': 'no-cache' });
  };
}
