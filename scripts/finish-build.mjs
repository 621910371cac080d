// After tsc: make the CLI entry executable, copy SQL migrations next to the compiled stores, bundle the web UI.
import { chmodSync, cpSync, existsSync } from 'node:fs';
const root = new URL('../', import.meta.url);
chmodSync(new URL('dist/src/cli/main.js', root), 0o755);
for (const dialect of ['sqlite', 'postgres']) {
  const from = new URL(`src/store/${dialect}/migrations/`, root);
  if (existsSync(from)) cpSync(from, new URL(`dist/src/store/${dialect}/migrations/`, root), { recursive: true });
}
// The web UI (ui/): bundled into dist/ui/ by esbuild.
await import('./build-ui.mjs');
