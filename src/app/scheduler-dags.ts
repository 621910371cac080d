/**
 * The DAG folder as the scheduler sees it: listed every dagDirListIntervalMs, a file parsed
 * again only when it changed (mtime or size first, then its content hash), always in the
 * parser's worker thread with the per-file time limit, never on the scheduler's thread.
 * Each parsed DAG is stored as a new serialized version; import errors are recorded and
 * cleared once the file imports again or is gone.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { contentVersion } from '../dag/serialize.js';
import { discoverDagFiles } from '../parsing/discover.js';
import { DagParser, type ParsedFile } from '../parsing/parser.js';
import type { DagSource } from '../scheduler/scheduler.js';
import type { DagRow, Store } from '../store/types.js';
import type { KilnConfig } from '../config/load.js';
import { dagSourcesFolder, findDag } from './dag-files.js';

interface SeenFile {
  mtimeMs: number;
  size: number;
  /** Content hash of what was parsed last (null when it could not be read). */
  version: string | null;
  /** The DAG id it defined, if it imported. */
  dagId: string | null;
}

export class DagFolderSync implements DagSource {
  private readonly seen = new Map<string, SeenFile>();
  /** DAGs of files that are gone are still to be deleted (at first, and after a pass that failed midway). */
  private pruneDue = true;
  private missingFolderReported = false;

  constructor(
    private readonly store: Store,
    private readonly options: { dagsFolder: string; parseTimeoutMs: number; sourcesDir?: string; log?: (message: string) => void },
  ) {}

  async refresh(): Promise<void> {
    if (!existsSync(this.options.dagsFolder)) {
      // A wrong path must not read as "every DAG file was deleted".
      if (!this.missingFolderReported) this.options.log?.(`the DAG folder ${this.options.dagsFolder} does not exist; DAGs already in the database are kept`);
      this.missingFolderReported = true;
      return;
    }
    this.missingFolderReported = false;
    const files = discoverDagFiles(this.options.dagsFolder);
    const present = new Set(files);
    const changed: Array<{ file: string; mtimeMs: number; size: number }> = [];
    for (const file of files) {
      const st = await stat(file).catch(() => null);
      if (!st) continue;
      const prev = this.seen.get(file);
      if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue;
      if (prev && prev.version !== null && contentVersion(await readFile(file)) === prev.version) {
        prev.mtimeMs = st.mtimeMs; // touched, not changed
        continue;
      }
      changed.push({ file, mtimeMs: st.mtimeMs, size: st.size });
    }
    const gone = [...this.seen.keys()].filter((f) => !present.has(f));
    // A file counts as seen (or gone) only once the database has it: a pass that fails midway
    // (the database went away) is redone by the next one.
    if (gone.length > 0) this.pruneDue = true;
    for (const file of gone) {
      await this.store.clearImportError(file);
      this.seen.delete(file);
    }
    // DAGs whose file is gone (also those left from before this scheduler started) are removed; their runs stay.
    if (this.pruneDue) await this.store.deleteDagsNotIn(files);
    this.pruneDue = false;
    if (changed.length === 0) return;

    const parser = new DagParser(this.options.parseTimeoutMs, this.options.sourcesDir);
    let parsed: ParsedFile[];
    try {
      parsed = await parser.parseFiles(changed.map((c) => c.file));
    } finally {
      // A fresh worker per pass: Node never unloads a module, and every version is one.
      await parser.close();
    }
    const now = Date.now();
    for (const [i, p] of parsed.entries()) {
      const { mtimeMs, size } = changed[i]!;
      const error = p.dag ? this.duplicateOf(p) : p.error!;
      const seen = { mtimeMs, size, version: p.version, dagId: error === null ? p.dag!.dagId : null };
      if (error !== null) {
        await this.store.setImportError(p.file, error.startsWith(p.file) ? error : `${p.file}: ${error}`, now);
        this.seen.set(p.file, seen);
        this.options.log?.(`import error: ${error}`);
        continue;
      }
      await this.store.upsertDag({ dagId: p.dag!.dagId, file: p.file, version: p.version!, serialized: p.dag! });
      await this.store.clearImportError(p.file);
      this.seen.set(p.file, seen);
    }
  }

  /** A DAG id already defined by another file still present: the file parsed later loses. */
  private duplicateOf(p: ParsedFile): string | null {
    for (const [file, seen] of this.seen) {
      if (file !== p.file && seen.dagId === p.dag!.dagId) return `DAG id '${p.dag!.dagId}' is already defined in ${file}`;
    }
    return null;
  }
}

/**
 * The stored row of a DAG, for commands run beside the scheduler (`dags trigger|pause`).
 * A DAG the scheduler has not recorded yet is parsed from the DAG folder (in a worker) and
 * recorded now, so it can be triggered or paused before its first scheduler pass.
 */
export async function storedDag(store: Store, config: Pick<KilnConfig, 'dagsFolder' | 'parseTimeoutMs' | 'homeDir'>, dagId: string): Promise<DagRow> {
  const existing = await store.getDag(dagId);
  if (existing) return existing;
  const found = await findDag(dagId, { cwd: process.cwd(), dagsFolder: config.dagsFolder, parseTimeoutMs: config.parseTimeoutMs, sourcesDir: dagSourcesFolder(config) });
  await store.upsertDag({ dagId, file: found.file, version: found.version, serialized: found.dag });
  await store.clearImportError(found.file);
  return (await store.getDag(dagId))!;
}
