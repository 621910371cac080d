/**
 * Piscina task function: the thread adapter. The first call ('warm') hands over the
 * worker's persistent side channel; every later call runs one try. Only moves messages.
 */
import { ChildProcess, spawn as spawnProcess } from 'node:child_process';
import { threadId, type MessagePort } from 'node:worker_threads';
import { isKilnMessage, type SupervisorMessage } from '../src/protocol/messages.js';
import { MAX_TRACKED_CHILD_PIDS, type PoolRequest, type RunReply, type WarmReply, type WarmRequest } from './pool-protocol.js';
import { registerDagLoader } from './register-loader.js';
import { Runner } from './runner-core.js';

let runner: Runner | null = null;

export default function handle(req: PoolRequest): Promise<RunReply> | WarmReply {
  if (req.type === 'run') {
    if (runner === null) throw new Error('kiln thread runner: a task arrived before the warm-up call');
    return runner.run(req.work, req.env);
  }
  return warm(req);
}

function warm(req: WarmRequest): WarmReply {
  const port = req.port as MessagePort;
  runner = new Runner({ send: (msg) => port.postMessage(msg), usage: 'thread', maxDagVersions: req.maxDagVersions });
  port.on('message', (msg: unknown) => {
    if (isKilnMessage(msg)) runner!.receive(msg as SupervisorMessage);
  });
  if (req.childPids) trackChildProcesses(req.childPids);
  registerDagLoader();
  return { pid: process.pid, threadId };
}

/**
 * A thread's child processes are kiln's children: the supervisor cannot tell them apart by
 * parent pid. So every process this thread starts is written to shared memory, which the
 * supervisor reads (without the thread's help) when it must kill the try.
 *
 * They must also die with kiln when kiln itself is SIGKILLed, when no code of kiln's runs
 * any more: each gets a watchdog, a `sh` loop (~1 ms to start) that ends with the child, or
 * kills the child (and the child's own children) once kiln's pid is gone.
 */
function trackChildProcesses(pids: Int32Array): void {
  const proto = ChildProcess.prototype as unknown as { spawn: (...args: unknown[]) => unknown };
  const spawn = proto.spawn;
  let startingWatchdog = false;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]) {
    const out = spawn.apply(this, args);
    if (startingWatchdog || this.pid === undefined) return out;
    const count = Atomics.load(pids, 0);
    if (count < MAX_TRACKED_CHILD_PIDS) {
      Atomics.store(pids, count + 1, this.pid);
      Atomics.store(pids, 0, count + 1);
    }
    startingWatchdog = true;
    try {
      watchOverChild(this.pid);
    } finally {
      startingWatchdog = false;
    }
    return out;
  };
}

// $1 kiln's pid, $2 the child's. Ends when the child does; kills it (its children first) when kiln is gone.
const WATCHDOG_SCRIPT = 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; '
  + 'kill -0 "$1" 2>/dev/null || { command -v pkill >/dev/null 2>&1 && pkill -KILL -P "$2"; kill -KILL "$2" 2>/dev/null; }';

function watchOverChild(childPid: number): void {
  try {
    const sh = spawnProcess('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'kiln-watchdog', String(process.pid), String(childPid)], { stdio: 'ignore' });
    sh.on('error', () => {});
    sh.unref();
  } catch {
    // no /bin/sh: the supervisor still kills the child at timeout, cancel and shutdown
  }
}
