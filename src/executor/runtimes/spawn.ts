/**
 * A fresh `node dist/workers/spawn-entry.js` per try, started with execa. The process is
 * detached into a process group of its own, so a kill reaches everything the task started
 * (kill(-pid)); when it exits, whatever it left in its group is killed too. The 'run'
 * message goes in over IPC as execa's ipcInput; 'finished' comes back the same way.
 *
 * The runner captures its own stdout/stderr during the try; whatever still reaches the pipes
 * (node's start-up warnings, V8 fatal errors, output of children holding the descriptors)
 * is appended to the try's log file by this side.
 */
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { isKilnMessage, type RunnerMessage, type SupervisorMessage, type TaskResult, type TaskWork } from '../../protocol/messages.js';
import type { RunReply } from '../../../workers/pool-protocol.js';
import { appendToLog } from './log-append.js';
import { WorkerGoneError, workersDir, type MessageSink, type TaskHost } from './types.js';

const STDERR_TAIL_BYTES = 4096;
const spawnEntry = new URL('spawn-entry.js', workersDir);

export interface SpawnConfig {
  env: Record<string, string>;
  heapLimitMb: number | null;
  killGraceMs: number;
}

export class SpawnedTask implements TaskHost {
  readonly pid: number | null;
  readonly threadId = null;
  readonly samplePid: number | null;
  exitCode: number | null = null;
  signal: string | null = null;
  readonly done: Promise<RunReply>;
  private finished: TaskResult | null = null;
  private stderrTail = '';
  private killTimer: NodeJS.Timeout | null = null;
  private exited = false;
  private readonly child: ResultPromise;
  private readonly killGraceMs: number;

  constructor(work: TaskWork, config: SpawnConfig, onMessage: MessageSink) {
    this.killGraceMs = config.killGraceMs;
    const execArgv = config.heapLimitMb === null ? [] : [`--max-old-space-size=${config.heapLimitMb}`];
    this.child = execa(process.execPath, [...execArgv, fileURLToPath(spawnEntry)], {
      ipc: true,
      serialization: 'json',
      ipcInput: { __kiln: 1, type: 'run', work },
      env: config.env,
      extendEnv: false,
      detached: true, // own process group: kill(-pid) reaches grandchildren
      cleanup: false, // the runner exits on its own when kiln's IPC channel closes
      stdin: 'ignore',
      buffer: false,
      reject: false,
    });
    this.pid = this.samplePid = this.child.pid ?? null;
    const logFile = work.logFile;
    const toLog = (chunk: Buffer) => {
      if (logFile !== null) appendToLog(logFile, chunk);
    };
    this.child.stdout?.on('data', toLog);
    this.child.stderr?.on('data', (chunk: Buffer) => {
      toLog(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    this.child.on('message', (msg: unknown) => {
      if (!isKilnMessage(msg)) return;
      const m = msg as RunnerMessage;
      if (m.type === 'finished') this.finished = m.result;
      else onMessage(m);
    });
    this.child.once('exit', () => {
      this.exited = true;
      this.killGroup('SIGKILL'); // nothing the task started outlives it
    });
    this.done = this.child.then((res) => {
      if (this.killTimer !== null) clearTimeout(this.killTimer);
      this.exitCode = res.exitCode ?? null;
      this.signal = res.signal ?? null;
      if (this.finished !== null) return { result: this.finished, recycle: false, workerMemoryBytes: 0 };
      const cause = this.pid === null || (res.exitCode === undefined && res.signal === undefined) ? res.cause : undefined;
      throw new WorkerGoneError({
        exitCode: this.exitCode,
        signal: this.signal,
        stderrTail: this.stderrTail,
        cause: cause instanceof Error ? cause : undefined,
      });
    });
  }

  get alive(): boolean {
    return this.pid !== null && !this.exited;
  }

  send(msg: SupervisorMessage): void {
    try {
      if (this.child.connected) this.child.send(msg);
    } catch {
      // exiting: nothing left to tell
    }
  }

  kill(): void {
    if (this.pid === null || this.killTimer !== null) return;
    this.killGroup('SIGTERM');
    this.killTimer = setTimeout(() => this.killGroup('SIGKILL'), this.killGraceMs);
    this.killTimer.unref();
  }

  reapStrays(): void {
    // The group is killed when the process exits.
  }

  private killGroup(signal: NodeJS.Signals): void {
    if (this.pid === null) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is empty
    }
  }
}
