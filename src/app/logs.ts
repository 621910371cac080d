/**
 * A try's log file by byte ranges: the API's tail (the last bytes, never the whole file) and
 * its live follow (from an offset). Log files are written by the executor at
 * `<logsFolder>/<dag>/<run>/<task>/<try>.log`, a mapped instance's at
 * `<logsFolder>/<dag>/<run>/<task>/<mapIndex>/<try>.log` (scheduler/task-work.ts).
 */
import { open, stat } from 'node:fs/promises';
import type { KilnConfig } from '../config/load.js';
import { UsageError } from '../errors.js';
import { tiId } from '../scheduler/run-state.js';
import { taskLogFile } from '../scheduler/task-work.js';
import type { Store, TiKey } from '../store/types.js';
import { getInstanceOrThrow } from './task-instances.js';

export interface LogChunk {
  file: string;
  /** The file's size now, in bytes (0 when the try wrote nothing yet). */
  size: number;
  /** Byte offset of `text` in the file. */
  offset: number;
  /** Bytes [offset, offset + length) as UTF-8 (a character cut at a chunk edge shows as U+FFFD). */
  text: string;
  length: number;
}

/**
 * The try's log file, checked against the task instance (a try it has not had is an error; so
 * is a mapped task named without a map index: the error lists its instances).
 */
export async function tryLogFile(store: Store, config: Pick<KilnConfig, 'logsFolder'>, key: TiKey, tryNumber?: number): Promise<{ file: string; tryNumber: number; mapIndex: number }> {
  const ti = await getInstanceOrThrow(store, key);
  const name = `task '${tiId(ti.taskId, ti.mapIndex)}' of run '${key.runId}'`;
  const n = tryNumber ?? ti.tryNumber;
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} has not run yet`);
  if (n > ti.tryNumber) throw new UsageError(`${name} has had ${ti.tryNumber} tries, not ${n}`);
  return { file: taskLogFile(config.logsFolder, key.dagId, key.runId, key.taskId, n, ti.mapIndex), tryNumber: n, mapIndex: ti.mapIndex };
}

/**
 * Reads at most `maxBytes` of `file`: from `offset` when given, else the last `maxBytes`
 * (the tail). A 50 MB log costs one stat and one read of the tail.
 */
export async function readLogChunk(file: string, options: { offset?: number; maxBytes: number }): Promise<LogChunk> {
  const size = await stat(file).then((s) => s.size, () => 0);
  const start = Math.min(size, options.offset ?? Math.max(0, size - options.maxBytes));
  const length = Math.min(options.maxBytes, size - start);
  if (length <= 0) return { file, size, offset: start, text: '', length: 0 };
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, start);
    return { file, size, offset: start, text: buffer.subarray(0, bytesRead).toString('utf8'), length: bytesRead };
  } finally {
    await handle.close();
  }
}
