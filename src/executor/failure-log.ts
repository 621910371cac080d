import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SerializedError } from '../protocol/messages.js';

/**
 * Appends why a try failed to its log file, so `kiln tasks logs` explains every failed try
 * (a runner writes a log only when the task prints; a worker that died wrote nothing at all).
 * Only on failure: successful tries cost no log I/O here.
 */
export function appendFailureToLog(logFile: string | null, error: SerializedError | null, exitCode: number | null, signal: string | null): void {
  if (logFile === null || error === null) return;
  const exit = [exitCode !== null ? `exit code ${exitCode}` : null, signal !== null ? `signal ${signal}` : null].filter(Boolean).join(', ');
  const detail = error.stack && error.stack.includes(error.message) ? error.stack : `${error.name}: ${error.message}`;
  const text = `${new Date().toISOString()} ERROR [kiln] try failed${error.code ? ` (${error.code})` : ''}${exit ? `, ${exit}` : ''}: ${detail}\n`;
  try {
    mkdirSync(dirname(logFile), { recursive: true });
    appendFileSync(logFile, text);
  } catch {
    // the finished event still carries the error; a missing log folder must not lose it
  }
}
