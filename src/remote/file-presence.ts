/**
 * existsSync, with answers remembered for a moment. A worker host checks each try's DAG file
 * (and its version snapshot) before starting it: at hundreds of tries a second that is the same
 * few files, and the check showed up at ~4% of a host's main thread. A file seen is trusted for
 * `rememberMs`. A missing one is looked for again every time (a DAG file may be copied in any
 * moment), unless `rememberMissing`: for snapshots, which a host without the scheduler's
 * folders never has, and whose absence only means the try runs the DAG file itself.
 */
import { existsSync } from 'node:fs';

/** Paths remembered at most; past it the memory starts over (a host serves a few DAG files). */
const MAX_REMEMBERED = 10_000;

export interface FilePresenceOptions {
  rememberMs?: number;
  rememberMissing?: boolean;
  now?: () => number;
  exists?: (path: string) => boolean;
}

export class FilePresence {
  private readonly seen = new Map<string, { at: number; present: boolean }>();
  private readonly rememberMs: number;
  private readonly rememberMissing: boolean;
  private readonly now: () => number;
  private readonly exists: (path: string) => boolean;

  constructor(o: FilePresenceOptions = {}) {
    this.rememberMs = o.rememberMs ?? 1_000;
    this.rememberMissing = o.rememberMissing ?? false;
    this.now = o.now ?? Date.now;
    this.exists = o.exists ?? existsSync;
  }

  has(path: string): boolean {
    const now = this.now();
    const seen = this.seen.get(path);
    if (seen !== undefined && now - seen.at < this.rememberMs) return seen.present;
    const present = this.exists(path);
    if (!present && !this.rememberMissing) {
      this.seen.delete(path);
      return false;
    }
    if (this.seen.size >= MAX_REMEMBERED) this.seen.clear();
    this.seen.set(path, { at: now, present });
    return present;
  }
}
