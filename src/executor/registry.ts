/**
 * Finds an executor by name or module path. Built-ins are modules like any plugin (a default
 * export that is an ExecutorFactory, optionally a `defaultIsolation` export), registered here
 * by name; anything else is a path to such a module, absolute or relative to the working
 * folder.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ISOLATIONS, type Isolation } from '../dag/types.js';
import { KilnError, errorMessage } from '../errors.js';
import type { ExecutorFactory } from './types.js';

export interface ResolvedExecutor {
  factory: ExecutorFactory;
  /** The isolation the executor prefers when the configuration names none. */
  defaultIsolation?: Isolation;
}

const BUILTINS: Readonly<Record<string, URL>> = {
  thread: new URL('./builtin/thread.js', import.meta.url),
  process: new URL('./builtin/process.js', import.meta.url),
  spawn: new URL('./builtin/spawn.js', import.meta.url),
  local: new URL('./builtin/local.js', import.meta.url),
  // Tries run on `kiln worker` hosts through Redis (src/remote/); loaded, with bullmq, only when named.
  bullmq: new URL('../remote/builtin.js', import.meta.url),
};

const BUILTIN_EXECUTORS = Object.keys(BUILTINS);

export async function resolveExecutor(nameOrPath: string): Promise<ResolvedExecutor> {
  if (typeof nameOrPath !== 'string' || nameOrPath.length === 0) {
    throw new KilnError('EXECUTOR', `executor must be one of ${BUILTIN_EXECUTORS.join(', ')} or a module path, got ${JSON.stringify(nameOrPath)}`);
  }
  const builtin = Object.hasOwn(BUILTINS, nameOrPath) ? BUILTINS[nameOrPath] : undefined;
  const path = builtin ? null : isAbsolute(nameOrPath) ? nameOrPath : resolve(process.cwd(), nameOrPath);
  if (path !== null && !existsSync(path)) {
    throw new KilnError('EXECUTOR', `executor '${nameOrPath}' is not a built-in (${BUILTIN_EXECUTORS.join(', ')}) and there is no module at ${path}`);
  }
  const where = path ?? `built-in executor '${nameOrPath}'`;
  let mod: { default?: unknown; defaultIsolation?: unknown };
  try {
    mod = (await import((builtin ?? pathToFileURL(path!)).href)) as typeof mod;
  } catch (err) {
    throw new KilnError('EXECUTOR', `executor module ${where} failed to load: ${errorMessage(err)}`, { cause: err });
  }
  if (typeof mod.default !== 'function') {
    throw new KilnError('EXECUTOR', `executor module ${where} has no ExecutorFactory default export: export default (options) => ({ name, start, submit, freeSlots, cancel, stop })`);
  }
  const { defaultIsolation } = mod;
  if (defaultIsolation !== undefined && !(ISOLATIONS as readonly unknown[]).includes(defaultIsolation)) {
    throw new KilnError('EXECUTOR', `executor module ${where} exports defaultIsolation ${JSON.stringify(defaultIsolation)}; use one of ${ISOLATIONS.join(', ')}`);
  }
  return { factory: mod.default as ExecutorFactory, defaultIsolation: defaultIsolation as Isolation | undefined };
}
