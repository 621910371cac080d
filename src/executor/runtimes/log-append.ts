/**
 * Output of a task process that bypassed the runner's own capture (V8 fatal errors, node
 * warnings, children writing to inherited descriptors) goes to the try's log file too.
 * Rare, so plain synchronous appends.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export function appendToLog(logFile: string, chunk: Buffer | string): void {
  try {
    appendFileSync(logFile, chunk);
  } catch {
    try {
      mkdirSync(dirname(logFile), { recursive: true });
      appendFileSync(logFile, chunk);
    } catch {
      // a log that cannot be written must not fail the task
    }
  }
}
