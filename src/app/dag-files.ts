import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
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
export async function findDag(fileOrId: string, options: { cwd: string; dagsFolder: string; parseTimeoutMs: number }): Promise<FoundDag> {
  const parser = new DagParser(options.parseTimeoutMs);
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

export async function parseDagFolder(dagsFolder: string, parseTimeoutMs: number): Promise<ParsedFile[]> {
  const parser = new DagParser(parseTimeoutMs);
  try {
    return await parser.parseFiles(discoverDagFiles(dagsFolder));
  } finally {
    await parser.close();
  }
}

function expectParsed(p: ParsedFile): FoundDag {
  if (!p.dag || !p.version) throw new DagImportError(p.file, p.error ?? `${p.file}: could not be imported`);
  return { file: p.file, version: p.version, dag: p.dag };
}
