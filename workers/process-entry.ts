/**
 * Tinypool child_process task module: the process adapter. Kiln protocol messages travel on
 * the process's IPC channel beside tinypool's own (tinypool forwards unmarked messages to
 * the supervisor's channel). Only moves messages.
 */
import { isKilnMessage, type SupervisorMessage } from '../src/protocol/messages.js';
import { exitWhenOrphaned } from './orphan-guard.js';
import type { PoolRequest, RunReply, WarmReply } from './pool-protocol.js';
import { registerDagLoader } from './register-loader.js';
import { Runner } from './runner-core.js';

let runner: Runner | null = null;

process.on('message', (msg: unknown) => {
  if (runner !== null && isKilnMessage(msg)) runner.receive(msg as SupervisorMessage);
});
exitWhenOrphaned('thread');

export default function handle(req: PoolRequest): Promise<RunReply> | WarmReply {
  if (req.type === 'run') {
    if (runner === null) throw new Error('kiln process runner: a task arrived before the warm-up call');
    return runner.run(req.work, req.env);
  }
  runner = new Runner({ send: (msg) => process.send!(msg), usage: 'process', maxDagVersions: req.maxDagVersions });
  registerDagLoader();
  return { pid: process.pid, threadId: 0 };
}
