/**
 * Entry of a spawned task process (isolation 'spawn'): one try, then exit 0 (success or
 * skipped) or 1 (failed). Started by the executor with an IPC channel, over which the 'run'
 * message arrives and the 'finished' one leaves. Lean on purpose: node builtins and the
 * runner core only, so its start-up cost is node's own plus the DAG module's.
 *
 * By hand (no IPC channel): `node dist/workers/spawn-entry.js '<TaskWork JSON>'` runs the
 * try and prints its TaskResult as JSON.
 */
import { isKilnMessage, type SupervisorMessage, type TaskResult, type TaskWork } from '../src/protocol/messages.js';
import { exitWhenOrphaned } from './orphan-guard.js';
import { runTaskInProcess } from './run-in-process.js';
import { Runner } from './runner-core.js';
import { writeRealStderr } from './task-log.js';

const exitCodeOf = (result: TaskResult) => (result.outcome === 'failed' ? 1 : 0);

if (typeof process.send === 'function') {
  exitWhenOrphaned('shell');
  let runner: Runner | null = null;
  process.on('message', (msg: unknown) => {
    if (!isKilnMessage(msg)) return;
    const m = msg as SupervisorMessage;
    if (m.type !== 'run') {
      runner?.receive(m);
      return;
    }
    if (runner !== null) return; // one try per process
    runner = new Runner({ send: (out) => process.send!(out), usage: 'process' });
    void runner.run(m.work).then(({ result }) => {
      process.send!({ __kiln: 1, type: 'finished', key: m.work.key, result }, undefined, {}, () => process.exit(exitCodeOf(result)));
    });
  });
} else {
  const raw = process.argv[2];
  if (raw === undefined) {
    writeRealStderr('usage: spawn-entry.js <TaskWork JSON>   (kiln starts it with an IPC channel; by hand use `kiln tasks run`)\n');
    process.exit(2);
  }
  const work = JSON.parse(raw) as TaskWork;
  void runTaskInProcess(work).then((result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(exitCodeOf(result)));
  });
}
