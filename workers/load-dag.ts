import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { isDag } from '../src/dag/authoring.js';
import type { Dag } from '../src/dag/types.js';
import { DagImportError, DagValidationError, errorMessage } from '../src/errors.js';
import { SOURCE_PARAM } from './dag-sources.js';
import { registerDagLoader } from './register-loader.js';

/**
 * Imports a DAG file and returns its default-exported DAG. `version` (the content hash)
 * is part of the module URL, so a changed file is imported afresh while an unchanged one
 * comes from Node's module cache. Every failure becomes a DagImportError naming the file.
 */
export async function importDagFile(file: string, version?: string, sourceSnapshot?: string | null): Promise<Dag> {
  registerDagLoader();
  // A snapshot that is gone (cleaned by hand, another host's home) falls back to the file as it is.
  const pinned = version && sourceSnapshot && existsSync(sourceSnapshot) ? `&${SOURCE_PARAM}=${encodeURIComponent(sourceSnapshot)}` : '';
  const url = pathToFileURL(file).href + (version ? `?v=${version}${pinned}` : '');
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw new DagImportError(file, `${file}: ${describeImportFailure(err)}`, { cause: err });
  }
  if (!isDag(mod.default)) {
    const what = mod.default === undefined ? 'has no default export' : `default-exports ${typeof mod.default === 'object' ? 'an object' : `a ${typeof mod.default}`} that is not a DAG`;
    throw new DagImportError(file, `${file}: ${what}; write \`export default dag({ id: ... }, (d) => { ... })\``);
  }
  return mod.default;
}

function describeImportFailure(err: unknown): string {
  if (err instanceof DagValidationError) return err.message;
  const e = err as { name?: string; errors?: Array<{ text: string; location?: { line: number; column: number } | null }> };
  // esbuild's transform error: report the first syntax error with its position.
  if (Array.isArray(e.errors) && e.errors[0]) {
    const first = e.errors[0];
    return `syntax error${first.location ? ` at line ${first.location.line}:${first.location.column}` : ''}: ${first.text}`;
  }
  if (e.name === 'SyntaxError') return `syntax error: ${errorMessage(err)}`;
  return `failed at import: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${errorMessage(err)}`;
}
