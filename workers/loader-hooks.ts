/**
 * Module hooks installed in every process or thread that imports DAG files
 * (see register-loader.ts). They run on Node's hooks thread.
 *
 * - `kiln` resolves to the running kiln, so a DAG folder outside the project works.
 * - .ts/.mts files are ES modules whatever the nearest package.json says; their types are
 *   stripped by esbuild. The output is cached on disk by content hash, so a spawned runner
 *   usually reads the cache and never starts esbuild.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SOURCE_PARAM } from './dag-sources.js';

export interface LoaderHookData {
  kilnUrl: string;
  cacheDir: string;
}

interface ResolveContext { conditions: string[]; parentURL?: string }
interface LoadContext { format?: string | null; conditions: string[] }
type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string; format?: string | null }>;
type NextLoad = (url: string, context: LoadContext) => Promise<{ format: string; source?: string | Buffer | null }>;

let kilnUrl = '';
let cacheDir = '';
let esbuild: typeof import('esbuild') | undefined;

export async function initialize(data: LoaderHookData): Promise<void> {
  kilnUrl = data.kilnUrl;
  cacheDir = data.cacheDir;
}

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve) {
  if (specifier === 'kiln') return { url: kilnUrl, format: 'module', shortCircuit: true };
  try {
    return await next(specifier, context);
  } catch (err) {
    // `./util.js` written in a .ts project means ./util.ts on disk (TypeScript's convention).
    if (specifier.startsWith('.') && specifier.endsWith('.js') && /\.m?ts$/.test(context.parentURL?.replace(/[?#].*$/, '') ?? '')) {
      return next(specifier.slice(0, -3) + '.ts', context);
    }
    throw err;
  }
}

const ESM_SYNTAX = /^\s*(import\s|import\{|export\s)/m;

/** A pinned DAG version's source (see dag-sources.ts), or null for the file as it is now. */
function snapshotSource(url: string): string | null {
  const at = url.indexOf(`${SOURCE_PARAM}=`);
  if (at < 0) return null;
  const path = decodeURIComponent(url.slice(at + SOURCE_PARAM.length + 1).replace(/[&#].*$/, ''));
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export async function load(url: string, context: LoadContext, next: NextLoad) {
  if (!url.startsWith('file:')) return next(url, context);
  const pinned = snapshotSource(url);
  if (pinned !== null && !/\.m?ts$/.test(url.replace(/[?#].*$/, ''))) return { format: 'module', source: pinned, shortCircuit: true };
  if (/\.js$/.test(url.replace(/[?#].*$/, ''))) {
    // DAG files are ES modules. A .js DAG in a folder without `"type": "module"` would be
    // read as CommonJS and fail on its first `import`: load it as a module instead.
    const loaded = await next(url, context);
    if (loaded.format !== 'commonjs') return loaded;
    const source = readFileSync(fileURLToPath(url), 'utf8');
    return ESM_SYNTAX.test(source) ? { format: 'module', source, shortCircuit: true } : loaded;
  }
  if (!/\.m?ts$/.test(url.replace(/[?#].*$/, ''))) return next(url, context);
  const path = fileURLToPath(url);
  const source = pinned ?? readFileSync(path, 'utf8');
  const hash = createHash('sha1').update(path).update('\0').update(source).digest('hex');
  const cached = join(cacheDir, `${hash}.mjs`);
  try {
    return { format: 'module', source: readFileSync(cached, 'utf8'), shortCircuit: true };
  } catch {
    // not cached yet
  }
  esbuild ??= await import('esbuild');
  const out = await esbuild.transform(source, { loader: 'ts', format: 'esm', sourcefile: path, sourcemap: 'inline', target: 'node20' });
  try {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    writeFileSync(tmp, out.code);
    renameSync(tmp, cached); // atomic: concurrent runners never read half a file
  } catch {
    // a read-only cache folder only costs speed
  }
  return { format: 'module', source: out.code, shortCircuit: true };
}
