/**
 * Watchdog thread of a child runner (see orphan-guard.ts): when the runner's parent (kiln)
 * is gone, kill the runner's process tree. Runs even while the runner's own thread is stuck.
 */
import { workerData } from 'node:worker_threads';
import { descendantsOf, signalPids } from './process-tree.js';

const { parentPid, pid, intervalMs } = workerData as { parentPid: number; pid: number; intervalMs: number };

setInterval(() => {
  if (process.ppid === parentPid) return;
  signalPids(descendantsOf(pid).reverse(), 'SIGKILL');
  process.kill(pid, 'SIGKILL');
}, intervalMs);
