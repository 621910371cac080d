import { DagImportError, KilnError } from '../errors.js';

/** Exit codes of every kiln command. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** kiln's own errors are expected: print their message only. Anything else is a bug: show the stack with KILN_DEBUG=1. */
export function reportError(err: unknown): number {
  if (err instanceof KilnError) {
    process.stderr.write(`kiln: ${err.message}\n`);
    if (process.env.KILN_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`);
    return err instanceof DagImportError || ['USAGE', 'DAG_INVALID', 'DAG_IMPORT', 'DAG_NOT_FOUND', 'RUN_NOT_FOUND', 'POOL_NOT_FOUND', 'CONFIG_INVALID', 'TASK_NOT_FOUND', 'EXECUTOR'].includes(err.code) ? EXIT.usage : EXIT.failed;
  }
  const e = err as Error;
  process.stderr.write(`kiln: internal error: ${e?.message ?? String(err)}\n`);
  process.stderr.write(process.env.KILN_DEBUG ? `${e?.stack}\n` : 'kiln: set KILN_DEBUG=1 to see the stack trace\n');
  return EXIT.failed;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain text table: columns sized to their widest cell. */
export function formatTable(headers: string[], rows: Array<Array<string | number | null>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function formatMs(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1) return `${ms.toFixed(2)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  return `${(bytes / (1024 * 1024)).toFixed(1)}MB`;
}
