import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const DAG_FILE_RE = /\.(ts|mts|js|mjs)$/;
const IGNORED_DIRS = new Set(['node_modules', '.git', 'dist', '.kiln']);

/**
 * Lists DAG files under a folder, sorted: .ts, .mts, .js and .mjs files, skipping
 * declaration files, node_modules and names starting with '.' or '_' (helpers).
 */
export function discoverDagFiles(folder: string): string[] {
  if (!existsSync(folder)) return [];
  if (statSync(folder).isFile()) return [folder];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name.startsWith('_')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!IGNORED_DIRS.has(entry.name)) walk(path);
      } else if (DAG_FILE_RE.test(entry.name) && !entry.name.endsWith('.d.ts')) {
        out.push(path);
      }
    }
  };
  walk(folder);
  return out.sort();
}
