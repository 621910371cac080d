// The browser app: ui/src/main.ts bundled by esbuild into dist/ui/app.js, with index.html and
// app.css beside it. The web server serves these three files (src/server/static.ts).
import { copyFileSync, mkdirSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
const out = new URL('dist/ui/', root);
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [new URL('ui/src/main.ts', root).pathname],
  outfile: new URL('app.js', out).pathname,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const file of ['index.html', 'app.css']) copyFileSync(new URL(`ui/${file}`, root), new URL(file, out));
