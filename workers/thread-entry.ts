/**
 * Piscina task function: the thread adapter. The first call ('warm') hands over the
 * worker's persistent side channel; every later call runs one try. Only moves messages.
 */
import { ChildProcess } from 'node:child_process';
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
 */
function trackChildProcesses(pids: Int32Array): void {
  const proto = ChildProcess.prototype as unknown as { spawn: (...args: unknown[]) => unknown };
  const spawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]) {
    const out = spawn.apply(this, args);
    const count = Atomics.load(pids, 0);
    if (this.pid !== undefined && count < MAX_TRACKED_CHILD_PIDS) {
      Atomics.store(pids, count + 1, this.pid);
      Atomics.store(pids, 0, count + 1);
    }
    return out;
  };
}
