/**
 * A child runner (process or spawn) must not outlive kiln. When kiln's IPC channel closes
 * (kiln exited, or was SIGKILLed) the runner takes its own children down and exits.
 *
 * 'disconnect' needs a free event loop; a task stuck in `while (true) {}` never lets it run.
 * So a tiny watchdog thread also polls the parent pid and, once the runner is orphaned,
 * kills the runner's descendants and the runner itself from outside the blocked loop.
 */
import { Worker } from 'node:worker_threads';
import { descendantsOf, signalPids } from './process-tree.js';

const WATCHDOG_INTERVAL_MS = 1000;
let installed = false;

export function exitWhenOrphaned(): void {
  if (installed || typeof process.send !== 'function') return;
  installed = true;
  process.once('disconnect', () => {
    signalPids(descendantsOf(process.pid).reverse(), 'SIGKILL');
    process.exit(1);
  });
  const watchdog = new Worker(new URL('./orphan-watchdog.js', import.meta.url), {
    workerData: { parentPid: process.ppid, pid: process.pid, intervalMs: WATCHDOG_INTERVAL_MS },
    stdout: false,
    stderr: false,
    // The watchdog needs no module hooks or flags of its own.
    execArgv: [],
    env: {},
    resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
  });
  watchdog.unref();
  watchdog.on('error', () => {}); // a failed watchdog must not take the runner down
}
