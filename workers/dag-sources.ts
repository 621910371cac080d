/**
 * Runs pinned to their DAG code. Every parse keeps the exact bytes of each DAG file version
 * it saw, content-addressed under kiln's home (`<homeDir>/dag-sources/<version>/<file name>`),
 * and a run's tries import the version the run was created with: the loader hooks serve the
 * snapshot in place of the file (loader-hooks.ts), under the file's own URL, so its relative
 * imports still resolve next to it. A run in flight when its DAG file is edited finishes on
 * the code it started with; new runs use the new code. Only the DAG file itself is pinned:
 * modules it imports are read as they are now (as Airflow 3 without a versioned bundle).
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** The snapshot path of `file` at `version`. */
export function sourceSnapshotPath(sourcesDir: string, file: string, version: string): string {
  return join(sourcesDir, version, basename(file));
}

/** Writes the snapshot once (atomically: a runner never reads half a file). Best effort. */
export function keepSource(sourcesDir: string, file: string, version: string, source: Buffer): void {
  const target = sourceSnapshotPath(sourcesDir, file, version);
  if (existsSync(target)) return;
  try {
    mkdirSync(join(sourcesDir, version), { recursive: true });
    const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, source);
    renameSync(tmp, target);
  } catch {
    // A read-only home only loses pinning: runners fall back to the file as it is.
  }
}

/** The query parameter that carries the snapshot path to the loader hooks. */
export const SOURCE_PARAM = 'kiln-source';
