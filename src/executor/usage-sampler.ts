/**
 * Samples RSS and CPU of running task processes (isolation process and spawn) with
 * pidusage, on one timer for all of them, only while there are any. A try that ends within
 * the first interval costs no sample: its end figures come from the runner itself
 * (getrusage in the child, see workers/runner-core.ts). The samples catch what the end
 * figure cannot: a peak in the middle, the last size of a process that got killed, and a
 * process tree growing past its memory limit while it runs.
 *
 * The RSS of a sample is the whole tree's: the runner plus every process it started (one
 * read of /proc per tick serves all targets), so a task cannot dodge its memory limit by
 * doing the work in a child process. CPU time is the runner's own.
 */
import pidusage from 'pidusage';
import { descendantsIn, processTable, rssBytesOf } from '../../workers/process-tree.js';

export interface Sampled {
  readonly samplePid: number | null;
  /** treeRssBytes: resident set size of the process and its descendants now; cpuMs: CPU time (user + system) of the process so far. */
  recordSample(treeRssBytes: number, cpuMs: number): void;
}

export class UsageSampler {
  private readonly targets = new Set<Sampled>();
  private timer: NodeJS.Timeout | null = null;
  private sampling = false;

  constructor(private readonly intervalMs: number) {}

  add(target: Sampled): void {
    if (target.samplePid === null) return;
    this.targets.add(target);
    if (this.timer === null) {
      this.timer = setInterval(() => void this.sample(), this.intervalMs);
      this.timer.unref();
    }
  }

  remove(target: Sampled): void {
    this.targets.delete(target);
    if (this.targets.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  stop(): void {
    this.targets.clear();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    pidusage.clear();
  }

  private async sample(): Promise<void> {
    if (this.sampling) return; // a slow /proc read must not pile up samples
    this.sampling = true;
    try {
      const table = processTable();
      await Promise.all([...this.targets].map(async (target) => {
        const pid = target.samplePid;
        if (pid === null) return;
        try {
          const stat = await pidusage(pid);
          let treeRss = stat.memory;
          for (const child of descendantsIn(table, pid)) treeRss += rssBytesOf(child);
          if (this.targets.has(target)) target.recordSample(treeRss, stat.ctime);
        } catch {
          // gone between the list and the read
        }
      }));
    } finally {
      this.sampling = false;
    }
  }
}
