import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { KilnConfig } from '../config/load.js';
import type { SerializedDag } from '../dag/types.js';
import { DagImportError, KilnError } from '../errors.js';
import { discoverDagFiles } from '../parsing/discover.js';
import { DagParser, type ParsedFile } from '../parsing/parser.js';

export interface FoundDag {
  file: string;
  version: string;
  dag: SerializedDag;
}

/**
 * Finds one DAG by file path or by id. A path is parsed alone; an id is looked up by
 * parsing the DAG folder. Import errors surface as DagImportError (exit code 2 in the CLI).
 */
export async function findDag(fileOrId: string, options: { cwd: string; dagsFolder: string; parseTimeoutMs: number; sourcesDir?: string }): Promise<FoundDag> {
  const parser = new DagParser(options.parseTimeoutMs, options.sourcesDir);
  try {
    const asPath = resolve(options.cwd, fileOrId);
    if (existsSync(asPath) && statSync(asPath).isFile()) return expectParsed((await parser.parseFiles([asPath]))[0]!);
    if (/[\\/]|\.(m?ts|m?js)$/.test(fileOrId)) throw new KilnError('DAG_NOT_FOUND', `no DAG file at ${asPath}`);
    const parsed = await parser.parseFiles(discoverDagFiles(options.dagsFolder));
    const hit = parsed.find((p) => p.dag?.dagId === fileOrId);
    if (hit) return expectParsed(hit);
    const broken = parsed.filter((p) => p.error);
    const hint = broken.length > 0 ? `; ${broken.length} file(s) failed to import: ${broken.map((b) => b.error).join('; ')}` : '';
    throw new KilnError('DAG_NOT_FOUND', `no DAG with id '${fileOrId}' in ${options.dagsFolder}${hint}`);
  } finally {
    await parser.close();
  }
}

export async function parseDagFolder(dagsFolder: string, parseTimeoutMs: number, sourcesDir?: string): Promise<ParsedFile[]> {
  const parser = new DagParser(parseTimeoutMs, sourcesDir);
  try {
    return await parser.parseFiles(discoverDagFiles(dagsFolder));
  } finally {
    await parser.close();
  }
}

/** Where the sources of parsed DAG versions are kept (workers/dag-sources.ts). */
export function dagSourcesFolder(config: Pick<KilnConfig, 'homeDir'>): string {
  return join(config.homeDir, 'dag-sources');
}

function expectParsed(p: ParsedFile): FoundDag {
  if (!p.dag || !p.version) throw new DagImportError(p.file, p.error ?? `${p.file}: could not be imported`);
  return { file: p.file, version: p.version, dag: p.dag };
}
