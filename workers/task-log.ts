/**
 * The per-try log file: everything a try writes to stdout or stderr, and its ctx.log lines.
 *
 * Writes are synchronous (fs.writeSync on a descriptor opened on first use), so the file is
 * complete the moment the runner reports the result, and what was written before a crash
 * (process.exit, SIGKILL, a native fault) is already in the kernel's hands. A try that
 * prints nothing creates no file: noop tasks cost no I/O.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { format } from 'node:util';
import type { LogLevel } from '../src/protocol/messages.js';

const madeDirs = new Set<string>();

export class TaskLog {
  private fd: number | null = null;
  private broken = false;
  private closed = false;

  constructor(private readonly file: string | null) {}

  write(text: string | Uint8Array): void {
    if (this.file === null || this.broken || this.closed) return; // late writes of an ended try are dropped
    try {
      if (this.fd === null) {
        const dir = dirname(this.file);
        if (!madeDirs.has(dir)) {
          mkdirSync(dir, { recursive: true });
          madeDirs.add(dir);
        }
        this.fd = openSync(this.file, 'a');
      }
      if (typeof text === 'string') writeSync(this.fd, text);
      else writeSync(this.fd, text);
    } catch (err) {
      // A log that cannot be written must not fail the task; say so once on the real stderr.
      this.broken = true;
      realStderrWrite(`[kiln] cannot write task log ${this.file}: ${(err as Error).message}\n`);
    }
  }

  close(): void {
    this.closed = true;
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = null;
  }
}

/** One ctx.log line as it appears in the file (the 'log' message carries `line` alone). */
export function formatLogLine(level: LogLevel, line: string): string {
  return `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${line}\n`;
}

export function formatArgs(args: unknown[]): string {
  return format(...args);
}

type Write = typeof process.stdout.write;
const originalStdout: Write = process.stdout.write;
const originalStderr: Write = process.stderr.write;

function realStderrWrite(text: string): void {
  originalStderr.call(process.stderr, text);
}

/**
 * Sends this thread's or process's stdout and stderr (console.* included) to `log` until the
 * returned function is called. Only one try runs at a time per runner, so there is no
 * interleaving between tries.
 */
export function captureStdio(log: TaskLog): () => void {
  const redirect = function (this: unknown, chunk: string | Uint8Array, encodingOrCb?: unknown, cb?: unknown): boolean {
    log.write(typeof chunk === 'string' || chunk instanceof Uint8Array ? chunk : String(chunk));
    const done = typeof encodingOrCb === 'function' ? encodingOrCb : cb;
    if (typeof done === 'function') process.nextTick(done as () => void);
    return true;
  } as Write;
  process.stdout.write = redirect;
  process.stderr.write = redirect;
  return () => {
    process.stdout.write = originalStdout;
    process.stderr.write = originalStderr;
  };
}

export function writeRealStderr(text: string): void {
  realStderrWrite(text);
}
