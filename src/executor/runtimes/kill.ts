/**
 * TERM, then KILL after a grace period, for a set of processes. The pids are taken before
 * the first signal: once a parent dies its children are re-parented and can no longer be
 * found from it.
 */
import { descendantsOf, isAlive, signalPids, startTimeOf } from '../../../workers/process-tree.js';

export function terminateProcesses(pids: readonly number[], graceMs: number, extraAtKill?: () => number[]): void {
  if (pids.length === 0) return;
  const marks = new Map(pids.map((pid) => [pid, startTimeOf(pid)] as const));
  signalPids(pids, 'SIGTERM');
  setTimeout(() => {
    for (const pid of extraAtKill?.() ?? []) if (!marks.has(pid)) marks.set(pid, startTimeOf(pid));
    const survivors: number[] = [];
    for (const [pid, startTime] of marks) {
      const now = startTimeOf(pid);
      if (startTime === null ? isAlive(pid) : now === startTime) survivors.push(pid);
    }
    signalPids(survivors, 'SIGKILL');
  }, graceMs).unref();
}

/**
 * `rootPid`'s descendants, and `rootPid` itself with includeRoot. When the root dies too,
 * children it starts during the grace period are found again for the KILL; a root that
 * lives on (a worker that gets the next try) is not searched again, so the next try's
 * children are left alone.
 */
export function terminateTree(rootPid: number, graceMs: number, options: { includeRoot: boolean }): void {
  const pids = descendantsOf(rootPid).reverse();
  if (!options.includeRoot) {
    terminateProcesses(pids, graceMs);
    return;
  }
  pids.push(rootPid);
  terminateProcesses(pids, graceMs, () => (isAlive(rootPid) ? descendantsOf(rootPid) : []));
}
