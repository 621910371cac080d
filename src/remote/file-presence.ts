/**
 * existsSync, with presence remembered for a moment. A worker host checks each try's DAG file
 * (and its version snapshot) before starting it: at hundreds of tries a second that is the same
 * few files, and the check showed up at ~4% of a host's main thread. A file seen is trusted for
 * `rememberMs`; a missing one is looked for again every time (it may be copied in any moment).
 */
import { existsSync } from 'node:fs';

/** Paths remembered at most; past it the memory starts over (a host serves a few DAG files). */
const MAX_REMEMBERED = 10_000;

export class FilePresence {
  private readonly seenAt = new Map<string, number>();

  constructor(
    private readonly rememberMs = 1_000,
    private readonly now: () => number = Date.now,
    private readonly exists: (path: string) => boolean = existsSync,
  ) {}

  has(path: string): boolean {
    const now = this.now();
    const seenAt = this.seenAt.get(path);
    if (seenAt !== undefined && now - seenAt < this.rememberMs) return true;
    if (!this.exists(path)) {
      this.seenAt.delete(path);
      return false;
    }
    if (this.seenAt.size >= MAX_REMEMBERED) this.seenAt.clear();
    this.seenAt.set(path, now);
    return true;
  }
}
