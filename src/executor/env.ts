/**
 * What a task's environment may hold. kiln's own settings (KILN_*, above all
 * KILN_DATABASE_URL) and anything that looks like a credential stay in the supervisor
 * unless the task names them in its `env` option.
 */
const SECRET_NAME = /(PASSWORD|SECRET|TOKEN|DATABASE_URL)/i;
/** kiln variables a runner needs and that hold nothing secret. */
const RUNNER_SETTINGS = new Set(['KILN_TS_CACHE_DIR']);

export function isProtectedName(name: string): boolean {
  if (RUNNER_SETTINGS.has(name)) return false;
  return /^KILN_/i.test(name) || SECRET_NAME.test(name);
}

/** The environment every worker starts with: the supervisor's minus protected variables. */
export function baseChildEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !isProtectedName(name)) out[name] = value;
  }
  return out;
}

/**
 * Protected variables a task asked for (by name, in its `env` option) and the supervisor
 * has; undefined when there are none, which is the common case and costs nothing.
 */
export function grantedEnv(names: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const name of names) {
    const value = env[name];
    if (value === undefined || !isProtectedName(name)) continue;
    (out ??= {})[name] = value;
  }
  return out;
}
