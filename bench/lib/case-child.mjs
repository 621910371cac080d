/**
 * Runs one case in a process of its own (fresh heap and JIT, its own node flags, a crash
 * stays contained) and writes its result as JSON to the given file.
 *   node [flags] bench/lib/case-child.mjs <case-id> <scale> <result.json> [options-json]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [caseId, scale, resultFile, optionsJson] = process.argv.slice(2);
const options = optionsJson ? JSON.parse(optionsJson) : {};
const started = performance.now();
const log = (msg) => process.stderr.write(`  [${((performance.now() - started) / 1000).toFixed(1)}s] ${msg}\n`);
const tmpDir = mkdtempSync(join(tmpdir(), `kiln-bench-${caseId}-`));
try {
  const mod = await import(`../cases/${caseId}.mjs`);
  const result = await mod.run({ scale, log, tmpDir, options });
  writeFileSync(resultFile, JSON.stringify(result));
} finally {
  rmSync(tmpDir, { recursive: true, force: true });
}
// Pools and clients that forget to unref must not keep a finished case alive.
process.exit(0);
