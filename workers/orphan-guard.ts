/**
 * A child runner (process or spawn) must not outlive kiln. When kiln's IPC channel closes
 * (kiln exited, or was SIGKILLed) the runner takes its own children down and exits.
 *
 * 'disconnect' needs a free event loop; a task stuck in `while (true) {}` never lets it run.
 * So a watchdog also checks, from outside the runner's thread, that kiln is still there:
 * - 'thread': a tiny worker thread polling the parent pid (~30 ms of CPU to start: right
 *   for a pre-forked worker that lives for many tries);
 * - 'shell': a `sh` loop around `kill -0 <kiln pid>` (~1 ms to start: right for a process
 *   that runs one try). The runner is the leader of its own process group there, so the
 *   watchdog kills the whole group, itself included.
 */
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { descendantsOf, signalPids } from './process-tree.js';

const WATCHDOG_INTERVAL_MS = 1000;
let installed = false;

export function exitWhenOrphaned(watchdog: 'thread' | 'shell'): void {
  if (installed || typeof process.send !== 'function') return;
  installed = true;
  process.once('disconnect', () => {
    signalPids(descendantsOf(process.pid).reverse(), 'SIGKILL');
    process.exit(1);
  });
  if (watchdog === 'thread') startThreadWatchdog();
  else startShellWatchdog();
}

function startThreadWatchdog(): void {
  const w = new Worker(new URL('./orphan-watchdog.js', import.meta.url), {
    workerData: { parentPid: process.ppid, pid: process.pid, intervalMs: WATCHDOG_INTERVAL_MS },
    stdout: false,
    stderr: false,
    execArgv: [], // no module hooks or flags of its own
    env: {},
  });
  w.unref();
  w.on('error', () => {}); // a failed watchdog must not take the runner down
}

function startShellWatchdog(): void {
  // $1 kiln's pid, $2 the runner's pid (= its process group when it leads one).
  const script = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -KILL -"$2" 2>/dev/null || kill -KILL "$2"';
  try {
    const sh = spawn('/bin/sh', ['-c', script, 'kiln-watchdog', String(process.ppid), String(process.pid)], { stdio: 'ignore' });
    sh.on('error', () => {});
    sh.unref();
    process.once('exit', () => sh.kill('SIGKILL'));
  } catch {
    // no /bin/sh: 'disconnect' alone has to do
  }
}
