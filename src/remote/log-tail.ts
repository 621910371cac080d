/** The end of a try's log, as a worker host sends it back to the scheduler. */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** The most of a try's log sent back to the scheduler. */
export const LOG_TAIL_BYTES = 256 * 1024;

/** The end of a try's log (all of it when small), or null when it wrote none. `machine`: this host's name, for the note on what stayed here. */
export function readLogTail(file: string | null, machine: string): string | null {
  if (file === null) return null;
  try {
    const size = statSync(file, { throwIfNoEntry: false })?.size; // a throw costs more than the read
    if (size === undefined) return null; // the try wrote no log
    const length = Math.min(size, LOG_TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buffer, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    const text = buffer.toString('utf8');
    return size > length ? `[kiln: the first ${size - length} bytes of this log stayed on worker host ${machine}, in ${file}]\n${text}` : text;
  } catch {
    return null;
  }
}
