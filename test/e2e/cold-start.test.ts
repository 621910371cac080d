/**
 * A command loads only what it uses: `kiln --help` and a cold `kiln dags test` with threads
 * must not pay for the web server, the remote executor, the spawn runtime, PostgreSQL, the
 * JSON Schema validator or observability (issue 13: a cold start a user waits for).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';

const MODULE_LOG = pathToFileURL(join(REPO, 'test/fixtures/module-log/register.mjs')).href;
const NEVER = ['hono', '@hono/node-server', 'bullmq', 'ioredis', 'prom-client', 'pino', '@opentelemetry', 'execa', 'playwright-core', 'ajv'];

async function modulesLoadedBy(args: string[]): Promise<{ code: number | null; stderr: string; packages: Set<string> }> {
  const cwd = scratchProject('kiln-cold-');
  const log = join(cwd, 'modules.log');
  const res = await runKiln(args, { cwd, env: { KILN_TEST_MODULE_LOG: log, NODE_OPTIONS: `--import ${MODULE_LOG}` } });
  const packages = new Set<string>();
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line) ?? /^require:((?:@[^/]+\/)?[^/.][^/]*)/.exec(line);
    if (m) packages.add(m[1]!.startsWith('@opentelemetry') ? '@opentelemetry' : m[1]!);
  }
  return { code: res.code, stderr: res.stderr, packages };
}

describe('cold start', () => {
  it('kiln --help loads the CLI and nothing of the engine', async () => {
    const { code, packages } = await modulesLoadedBy(['--help']);
    expect(code).toBe(0);
    expect(packages.has('commander')).toBe(true); // the log works
    for (const p of [...NEVER, 'piscina', 'tinypool', 'drizzle-orm', 'better-sqlite3', 'pg', 'cron-parser']) expect(packages, p).not.toContain(p);
  });

  it('a cold dags test with threads loads its runtime and store, not the others', async () => {
    const { code, stderr, packages } = await modulesLoadedBy(['dags', 'test', join(REPO, 'examples/dags/example_dag.ts'), '--executor', 'thread', '--json']);
    expect(code, stderr).toBe(0);
    for (const p of ['piscina', 'better-sqlite3', 'drizzle-orm']) expect(packages, p).toContain(p);
    for (const p of [...NEVER, 'pg']) expect(packages, p).not.toContain(p);
  });
});
